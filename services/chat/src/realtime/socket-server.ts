import type { Redis } from "ioredis";
import { createAdapter } from "@socket.io/redis-adapter";
import { Server, type Socket } from "socket.io";
import type { z } from "zod";
import type {
  Ack,
  ClientToServerEvents,
  ServerToClientEvents,
} from "../contract/events.js";
import { chatRoom, isChatRoom, userRoom } from "../contract/events.js";
import { corsOrigins } from "../config.js";
import { ReadEvent, SendEvent, TypingEvent } from "../contract/schemas.js";
import type { Presence } from "../cluster/presence.js";
import type { Chats } from "../domain/chats.js";
import type { Messages } from "../domain/messages.js";
import type { Tokens } from "../domain/tokens.js";
import {
  AppError,
  errorBody,
  fromZodError,
  notFound,
  toAppError,
} from "../errors.js";
import type { Lifecycle } from "../lifecycle.js";
import { type Logger, oncePer } from "../logger.js";
import { Announcer, type ChatServer, type SocketData } from "./announcer.js";

export interface SocketServerDeps {
  chats: Chats;
  messages: Messages;
  tokens: Tokens;
  presence: Presence;
  lifecycle: Lifecycle;
  log: Logger;
  /** Publisher and subscriber for the Redis adapter, if clustered. */
  redis?: { pub: Redis; sub: Redis } | undefined;
  maxFrameBytes: number;
  corsOrigin: string;
  presenceTtlMs: number;
}

type ChatSocket = Socket<
  ClientToServerEvents,
  ServerToClientEvents,
  Record<string, never>,
  SocketData
>;

/** The bearer token of a handshake: auth field, header or query. */
function handshakeToken(socket: ChatSocket): string | undefined {
  const { auth, headers, query } = socket.handshake;
  if (typeof auth.token === "string") return auth.token;
  const header = headers.authorization;
  if (header?.toLowerCase().startsWith("bearer ")) return header.slice(7);
  return typeof query.token === "string" ? query.token : undefined;
}

/** Most leavings kept for a retry while Redis is away. */
const MAX_UNRECORDED = 10_000;

/** How long a stopping node lets connections write what they queued. */
const TRANSPORT_CLOSE_MS = 1_000;

/** Longest delay setTimeout accepts. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The Socket.IO endpoint, to attach to the HTTP server: authenticates the
 * handshake, puts each socket in the rooms of its user and chats before
 * `connect` fires, and turns client events into domain calls.
 */
export function createSocketServer(deps: SocketServerDeps): {
  io: ChatServer;
  announcer: Announcer;
  closeTransports(): Promise<void>;
  stop(): Promise<void>;
} {
  const io: ChatServer = new Server({
    maxHttpBufferSize: deps.maxFrameBytes,
    cors: {
      origin: corsOrigins(deps.corsOrigin),
    },
    ...(deps.redis && {
      adapter: createAdapter(deps.redis.pub, deps.redis.sub, {
        requestsTimeout: 5_000,
      }),
    }),
  });
  const announcer = new Announcer(io, deps.chats);
  const background = new Background();

  io.use((socket, next) => {
    authenticate(socket, deps, announcer, background).then(
      () => next(),
      (error: unknown) => {
        const appError = toAppError(error);
        if (appError.code === "INTERNAL") {
          deps.log.error("handshake failed", { error, socket: socket.id });
        }
        next(
          new Error(
            appError.code === "UNAUTHORIZED" ? "unauthorized" : "unavailable",
          ),
        );
      },
    );
  });

  io.on("connection", (socket) => {
    onConnection(socket, deps, announcer, background);
  });

  // Room changes published while Redis was away are lost: when it is
  // back, put this node's sockets in the rooms the database says.
  for (const client of deps.redis ? [deps.redis.pub, deps.redis.sub] : []) {
    let lost = false;
    client.on("close", () => {
      lost = true;
    });
    client.on("ready", () => {
      if (!lost) return;
      lost = false;
      void background.run(deps.log, "rooms", () => resyncRooms(io, deps.chats));
    });
  }

  const heartbeat = setInterval(
    () => void keepPresence(io, deps, announcer, background),
    Math.max(1_000, Math.floor(deps.presenceTtlMs / 3)),
  );
  heartbeat.unref();

  return {
    io,
    announcer,
    /**
     * Closes every connection once what it has queued (acknowledgements
     * among it) is written. Closing the transport, not the socket, lets the
     * clients reconnect, to another node once this one stops listening.
     */
    async closeTransports() {
      for (const socket of io.of("/").sockets.values()) socket.conn.close();
      const deadline = Date.now() + TRANSPORT_CLOSE_MS;
      while (io.engine.clientsCount > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      io.engine.close();
    },
    /** Stops the heartbeat and waits for pending presence updates. */
    async stop() {
      clearInterval(heartbeat);
      await background.settled();
    },
  };
}

async function authenticate(
  socket: ChatSocket,
  deps: SocketServerDeps,
  announcer: Announcer,
  background: Background,
) {
  if (deps.lifecycle.draining) {
    throw new AppError("UNAVAILABLE", "this node is shutting down");
  }
  const token = handshakeToken(socket);
  if (!token) throw new AppError("UNAUTHORIZED", "missing token");
  const { userId, expiresAt } = deps.tokens.verify(token);
  socket.data.userId = userId;
  socket.data.expiresAt = expiresAt;
  await socket.join(userRoom(userId));
  const chatIds = await deps.chats.chatIdsOf(userId);
  await socket.join(chatIds.map(chatRoom));
  // Counted online before `connect` fires, so that another device of the
  // user leaving right after never sees the user offline in between.
  socket.data.cameOnline = await deps.presence
    .connect(userId, socket.id)
    .catch((error: unknown) => {
      deps.log.warn("presence update failed", { error });
      return false;
    });
  // A connection lost before `connect` fires has no `disconnect` event.
  socket.conn.once("close", () => {
    if (socket.data.entered) return;
    void background.runFor(userId, deps.log, "presence", () =>
      leave(deps, announcer, background, [userId, socket.id]),
    );
  });
}

function onConnection(
  socket: ChatSocket,
  deps: SocketServerDeps,
  announcer: Announcer,
  background: Background,
): void {
  const { userId, expiresAt } = socket.data;
  socket.data.entered = true;
  const log = deps.log.child({ socket: socket.id, user: userId });
  log.info("socket connected", { transport: socket.conn.transport.name });

  // Chats joined while the handshake ran were announced to rooms this
  // socket could not be reached in yet: read them again.
  void background.run(log, "rooms", async () => {
    await socket.join((await deps.chats.chatIdsOf(userId)).map(chatRoom));
  });

  const expiry = setTimeout(
    () => socket.disconnect(true),
    Math.min(Math.max(0, expiresAt - Date.now()), MAX_TIMER_MS),
  );

  if (socket.data.cameOnline) {
    void background.runFor(userId, log, "presence", () =>
      announcer.presence(userId, true),
    );
  }

  socket.on("disconnect", (reason) => {
    clearTimeout(expiry);
    log.info("socket disconnected", { reason });
    void background.runFor(userId, log, "presence", () =>
      leave(deps, announcer, background, [userId, socket.id]),
    );
  });

  refuseUnknown(socket, log);

  on(socket, log, deps, "message:send", SendEvent, async (input, reply) => {
    // The writer calls back in seq order with the chat's other sends from
    // this node: acknowledge, then broadcast, there.
    const sent = await deps.messages.send(
      {
        chatId: input.chat_id,
        senderId: userId,
        text: input.text,
        clientId: input.client_id,
      },
      (result) => {
        reply(result);
        if (!result.duplicate) announcer.message(result.message);
      },
    );
    log.debug("message sent", {
      chat: input.chat_id,
      seq: sent.message.seq,
      duplicate: sent.duplicate,
    });
  });

  on(socket, log, deps, "message:read", ReadEvent, async (input, reply) => {
    const read = await deps.messages.markRead(input.chat_id, userId, input.seq);
    reply({ last_read_seq: read.last_read_seq });
    announcer.read(read);
  });

  on(socket, log, deps, "typing", TypingEvent, (input, reply) => {
    if (!socket.rooms.has(chatRoom(input.chat_id))) throw notFound("chat");
    reply({});
    announcer.typing(input.chat_id, userId, input.typing);
    return Promise.resolve();
  });
}

type AckFn = (answer: Ack<object>) => void;

/** The payload, and the callback if the last argument is one. */
function payloadAndAck(args: unknown[]): [unknown, AckFn | undefined] {
  const last = args.at(-1);
  if (typeof last !== "function") return [args[0], undefined];
  return [args.length > 1 ? args[0] : undefined, last as AckFn];
}

const EVENTS = new Set<string>(["message:send", "message:read", "typing"]);

/** Answers an event the server does not know, if it asked for an answer. */
function refuseUnknown(socket: ChatSocket, log: Logger): void {
  socket.onAny((event: string, ...args: unknown[]) => {
    if (EVENTS.has(event)) return;
    log.debug("unknown event", { event });
    const [, ack] = payloadAndAck(args);
    ack?.({
      ok: false,
      error: { code: "VALIDATION", message: `unknown event ${event}` },
    });
  });
}

/**
 * Registers one client event: checks the acknowledgement callback and the
 * payload and runs the handler as tracked work; the handler acknowledges,
 * then broadcasts. A failure before the acknowledgement becomes
 * `{ ok: false, error }` for this socket alone.
 */
function on<S extends z.ZodType, R extends object>(
  socket: ChatSocket,
  log: Logger,
  deps: SocketServerDeps,
  event: keyof ClientToServerEvents,
  schema: S,
  handle: (input: z.output<S>, reply: (answer: R) => void) => Promise<void>,
): void {
  socket.on(event, (...args: unknown[]) => {
    const [payload, ack] = payloadAndAck(args);
    if (!ack) {
      log.debug("event without acknowledgement dropped", { event });
      return;
    }
    let replied = false;
    const reply = (answer: Ack<R>) => {
      if (replied) return;
      replied = true;
      ack(answer);
    };
    deps.lifecycle
      .run(() => {
        const input = schema.safeParse(payload);
        if (!input.success) throw fromZodError(input.error, "payload");
        return handle(input.data, (answer) => reply({ ok: true, ...answer }));
      })
      .catch((error: unknown) => {
        const appError = toAppError(error);
        if (appError.code === "INTERNAL") {
          log.error("event failed", { event, error });
        } else {
          log.info("event refused", { event, code: appError.code });
        }
        reply({ ok: false, error: errorBody(appError) });
      });
  });
}

/**
 * Work a node does on its own (presence, room repair): failures are
 * logged, at most every 10 s, and never thrown; stopping waits for it.
 */
class Background {
  /** Sockets whose leaving could not be recorded yet (Redis was away). */
  readonly unrecorded: [number, string][] = [];
  private readonly pending = new Set<Promise<void>>();
  private readonly chains = new Map<number, Promise<void>>();
  private readonly warn = oncePer(10_000);

  run(log: Logger, what: string, work: () => Promise<void>): Promise<void> {
    const running = work()
      .catch((error: unknown) => {
        if (this.warn()) log.warn(`${what} update failed`, { error });
      })
      .finally(() => this.pending.delete(running));
    this.pending.add(running);
    return running;
  }

  /**
   * Like run, after the user's earlier work: one user's presence changes
   * are told in the order they happened on this node.
   */
  runFor(
    userId: number,
    log: Logger,
    what: string,
    work: () => Promise<void>,
  ): Promise<void> {
    const previous = this.chains.get(userId) ?? Promise.resolve();
    const next = previous.then(() => this.run(log, what, work));
    this.chains.set(userId, next);
    void next.then(() => {
      if (this.chains.get(userId) === next) this.chains.delete(userId);
    });
    return next;
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }
}

/** Joins and leaves chat rooms so that they match the memberships. */
async function resyncRooms(io: ChatServer, chats: Chats): Promise<void> {
  const sockets = [...io.of("/").sockets.values()];
  const userIds = [...new Set(sockets.map((s) => s.data.userId))];
  const memberships = await chats.chatIdsOfUsers(userIds);
  for (const socket of sockets) {
    const rooms = (memberships.get(socket.data.userId) ?? []).map(chatRoom);
    const wanted = new Set(rooms);
    for (const room of socket.rooms) {
      if (isChatRoom(room) && !wanted.has(room)) {
        void socket.leave(room);
      }
    }
    void socket.join(rooms);
  }
}

/** Records a socket's leaving, and tells it if its user is now offline. */
async function leave(
  deps: SocketServerDeps,
  announcer: Announcer,
  background: Background,
  gone: [number, string],
): Promise<void> {
  const [userId, socketId] = gone;
  try {
    if (await deps.presence.disconnect(userId, socketId)) {
      await announcer.presence(userId, false);
    }
  } catch (error) {
    const { unrecorded } = background;
    if (unrecorded.length < MAX_UNRECORDED) unrecorded.push(gone);
    throw error;
  }
}

/**
 * Refreshes this node's sockets in presence, records leavings that failed
 * before, and sweeps the sockets of nodes that died.
 */
async function keepPresence(
  io: ChatServer,
  deps: SocketServerDeps,
  announcer: Announcer,
  background: Background,
): Promise<void> {
  const local = [...io.of("/").sockets.values()].map(
    (s) => [s.data.userId, s.id] as [number, string],
  );
  await background.run(deps.log, "presence", async () => {
    for (const userId of await deps.presence.refresh(local)) {
      await announcer.presence(userId, true);
    }
    for (const gone of background.unrecorded.splice(0)) {
      // A failure puts it back for the next round.
      await leave(deps, announcer, background, gone).catch(() => undefined);
    }
    for (const userId of await deps.presence.sweep()) {
      await announcer.presence(userId, false);
    }
  });
}
