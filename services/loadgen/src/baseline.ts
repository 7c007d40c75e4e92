/**
 * The raw baseline: a bare Socket.IO server in this process, on a free
 * loopback port, that acknowledges message:send at once and emits
 * message:new to the sender's group room. No database, no Redis, no
 * authentication: what the product's latency is measured against.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import type {
  ClientToServerEvents,
  ServerToClientEvents,
} from "@windi/chat/dist/contract/events.js";
import type { Message } from "@windi/chat/dist/contract/schemas.js";
import type { BenchConfig } from "./config.js";
import type { Participant } from "./load.js";
import { groupOf } from "./scenario.js";

interface EchoData {
  user: number;
  chat: number;
}

type EchoServer = Server<
  ClientToServerEvents,
  ServerToClientEvents,
  Record<string, never>,
  EchoData
>;

export interface Baseline {
  url: string;
  close(): Promise<void>;
}

function echo(io: EchoServer): void {
  const lastSeq = new Map<number, number>();
  let lastId = 0;
  io.on("connection", (socket) => {
    const { user, chat } = socket.data;
    void socket.join(`chat:${chat}`);
    socket.on("message:send", (payload, ack) => {
      const seq = (lastSeq.get(chat) ?? 0) + 1;
      lastSeq.set(chat, seq);
      const message: Message = {
        id: ++lastId,
        chat_id: chat,
        sender_id: user,
        text: payload.text,
        timestamp: new Date().toISOString(),
        seq,
        client_id: payload.client_id ?? null,
        is_read: false,
      };
      ack({ ok: true, message, duplicate: false });
      io.to(`chat:${chat}`).emit("message:new", message);
    });
  });
}

/** Starts the echo server on 127.0.0.1, on a port the system picks. */
export async function startBaseline(): Promise<Baseline> {
  const http = createServer();
  const io: EchoServer = new Server(http);
  io.use((socket, next) => {
    const auth = socket.handshake.auth as Partial<EchoData>;
    socket.data.user = Number(auth.user);
    socket.data.chat = Number(auth.chat);
    next();
  });
  echo(io);
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(0, "127.0.0.1", resolve);
  });
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => void io.close(() => resolve())),
  };
}

/** The same users and groups as the product run, on the echo server. */
export function baselineParticipants(
  config: BenchConfig,
  url: string,
): Participant[] {
  return Array.from({ length: config.users }, (_, index) => {
    const chatId = groupOf(index, config) + 1;
    return { index, url, auth: { user: index + 1, chat: chatId }, chatId };
  });
}
