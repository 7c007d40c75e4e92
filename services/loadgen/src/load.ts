/**
 * The measured phase, the same for the product and the baseline: one
 * socket.io-client per user, each sending at a fixed rate with an
 * acknowledgement, every socket recording when each message:new arrives.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { io, type Socket } from "socket.io-client";
import type {
  ClientToServerEvents,
  ServerToClientEvents,
} from "@windi/chat/dist/contract/events.js";
import type { Message } from "@windi/chat/dist/contract/schemas.js";
import type { Api } from "./api.js";
import type { BenchConfig } from "./config.js";
import { mapLimit, sleep } from "./limit.js";

export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

const CONNECT_TIMEOUT_MS = 10_000;
const CONNECT_CONCURRENCY = 20;
const DRAIN_POLL_MS = 50;
/** Sampling step of the loop delay histogram, which includes it. */
const LOOP_RESOLUTION_MS = 10;
const PADDING = "x".repeat(64);

/** One simulated user: where it connects, as whom, and its chat. */
export interface Participant {
  index: number;
  url: string;
  auth: Record<string, string | number>;
  chatId: number;
  /** This user's REST client, to catch up from history (product only). */
  api?: Api;
}

/** One send and what became of it. Times are performance.now() values. */
export interface Sent {
  clientId: string;
  chatId: number;
  sender: number;
  sentAt: number;
  answeredAt?: number;
  /** The stored message, when acknowledged with ok. */
  message?: Message;
  /** An error code, or ACK_TIMEOUT. */
  error?: string;
}

export interface Received {
  chatId: number;
  seq: number;
  clientId: string | null;
  at: number;
}

export interface LoadResult {
  sent: Sent[];
  /** The message:new events of each participant, by participant index. */
  received: Received[][];
  /** Socket-level trouble by kind (disconnects, reconnects). */
  incidents: Record<string, number>;
  startedAt: number;
  endedAt: number;
  /** How late this process's timers ran: high means the bench is starved. */
  loopDelayP99Ms: number;
}

function connect(p: Participant): Promise<ChatSocket> {
  const socket: ChatSocket = io(p.url, {
    auth: p.auth,
    transports: ["websocket"],
    forceNew: true,
    timeout: CONNECT_TIMEOUT_MS,
    reconnectionAttempts: 5,
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (error) => {
      socket.disconnect();
      reject(new Error(`socket to ${p.url} failed: ${error.message}`));
    });
  });
}

async function connectAll(participants: Participant[]) {
  const settled = await mapLimit(participants, CONNECT_CONCURRENCY, (p) =>
    connect(p).then(
      (socket) => ({ socket }),
      (error: unknown) => ({ error }),
    ),
  );
  const sockets = settled.flatMap((s) => ("socket" in s ? [s.socket] : []));
  const failed = settled.find((s) => "error" in s);
  if (failed && "error" in failed) {
    for (const socket of sockets) socket.disconnect();
    throw failed.error;
  }
  return sockets;
}

function count(tally: Record<string, number>, key: string): void {
  tally[key] = (tally[key] ?? 0) + 1;
}

function record(
  socket: ChatSocket,
  into: Received[],
  incidents: Record<string, number>,
): void {
  socket.on("message:new", (m) => {
    const at = performance.now();
    into.push({ chatId: m.chat_id, seq: m.seq, clientId: m.client_id, at });
  });
  socket.on("disconnect", (reason) => {
    if (reason !== "io client disconnect") count(incidents, "DISCONNECT");
  });
  socket.io.on("reconnect", () => count(incidents, "RECONNECT"));
}

function sendOne(
  socket: ChatSocket,
  sent: Sent,
  ackTimeoutMs: number,
): Promise<void> {
  const text = `bench ${sent.clientId} ${PADDING}`;
  const payload = { chat_id: sent.chatId, text, client_id: sent.clientId };
  return new Promise((resolve) => {
    socket
      .timeout(ackTimeoutMs)
      .emit("message:send", payload, (timedOut, reply) => {
        sent.answeredAt = performance.now();
        if (timedOut) sent.error = "ACK_TIMEOUT";
        else if (reply.ok) sent.message = reply.message;
        else sent.error = reply.error.code;
        resolve();
      });
  });
}

interface Plan {
  runId: string;
  startAt: number;
  intervalMs: number;
  count: number;
  durationMs: number;
  ackTimeoutMs: number;
}

function plan(config: BenchConfig, runId: string): Plan {
  return {
    runId,
    startAt: performance.now() + 100,
    intervalMs: 1000 / config.rate,
    count: config.messagesPerUser,
    durationMs: config.durationS * 1000,
    ackTimeoutMs: config.ackTimeoutMs,
  };
}

/** Sends on a fixed schedule, not waiting for acks (an open loop). */
async function sendLoop(
  socket: ChatSocket,
  p: Participant,
  plan: Plan,
  users: number,
  sent: Sent[],
): Promise<void> {
  // Users start evenly spread over one interval, not all at once.
  const offset = (plan.intervalMs * p.index) / users;
  const pending: Promise<void>[] = [];
  for (let i = 0; i < plan.count; i++) {
    const due = offset + i * plan.intervalMs;
    if (due >= plan.durationMs) break;
    await sleep(plan.startAt + due - performance.now());
    const entry: Sent = {
      clientId: `${plan.runId}-${p.index}-${i}`,
      chatId: p.chatId,
      sender: p.index,
      sentAt: performance.now(),
    };
    sent.push(entry);
    pending.push(sendOne(socket, entry, plan.ackTimeoutMs));
  }
  await Promise.all(pending);
}

/** Waits until every acked message reached every member, or `ms` passed. */
async function drain(
  result: Pick<LoadResult, "sent" | "received">,
  participants: Participant[],
  ms: number,
): Promise<void> {
  const members = new Map<number, number>();
  for (const p of participants) {
    members.set(p.chatId, (members.get(p.chatId) ?? 0) + 1);
  }
  const expected = result.sent
    .filter((s) => s.message)
    .reduce((n, s) => n + (members.get(s.chatId) ?? 0), 0);
  const deadline = performance.now() + ms;
  const arrived = () => result.received.reduce((n, r) => n + r.length, 0);
  while (arrived() < expected && performance.now() < deadline) {
    await sleep(DRAIN_POLL_MS);
  }
}

function lastEvent(sent: Sent[], received: Received[][]): number {
  let last = 0;
  for (const s of sent) last = Math.max(last, s.answeredAt ?? 0);
  for (const r of received) for (const e of r) last = Math.max(last, e.at);
  return last;
}

/** Connects every participant, runs the sends, waits for the deliveries. */
export async function runLoad(
  participants: Participant[],
  config: BenchConfig,
  runId: string,
): Promise<LoadResult> {
  const sockets = await connectAll(participants);
  const received = participants.map((): Received[] => []);
  const incidents: Record<string, number> = {};
  sockets.forEach((s, i) => record(s, received[i] ?? [], incidents));
  const sent: Sent[] = [];
  const schedule = plan(config, runId);
  const delay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  delay.enable();
  try {
    await Promise.all(
      participants.map((p, i) =>
        sendLoop(sockets[i] as ChatSocket, p, schedule, config.users, sent),
      ),
    );
    await drain({ sent, received }, participants, config.drainMs);
  } finally {
    delay.disable();
    for (const socket of sockets) socket.disconnect();
  }
  return {
    sent,
    received,
    incidents,
    startedAt: schedule.startAt,
    endedAt: lastEvent(sent, received),
    loopDelayP99Ms: Math.max(
      0,
      delay.percentile(99) / 1e6 - LOOP_RESOLUTION_MS,
    ),
  };
}
