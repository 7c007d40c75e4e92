import type { Redis } from "ioredis";
import { createAdapter } from "@socket.io/redis-adapter";
import { Server, type Socket } from "socket.io";
import type { z } from "zod";
import type {
  Ack,
  ClientToServerEvents,
  ServerToClientEvents,
} from "../contract/events.js";
import { chatRoom, userRoom } from "../contract/events.js";
import { ReadEvent, SendEvent, TypingEvent } from "../contract/schemas.js";
import type { Presence } from "../cluster/presence.js";
import type { Chats } from "../domain/chats.js";
import type { Messages } from "../domain/messages.js";
import type { Tokens } from "../domain/tokens.js";
import { AppError, errorBody, notFound, toAppError } from "../errors.js";
import type { Lifecycle } from "../lifecycle.js";
import type { Logger } from "../logger.js";
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

/** Longest delay setTimeout accepts. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The Socket.IO endpoint, to attach to the HTTP server: authenticates the handshake, puts each socket in
 * the rooms of its user and chats before `connect` fires, and turns client
 * events into domain calls.
 */
export function createSocketServer(deps: SocketServerDeps): {
  io: ChatServer;
  announcer: Announcer;
  stop(): Promise<void>;
} {
  const io: ChatServer = new Server({
    maxHttpBufferSize: deps.maxFrameBytes,
    cors: {
      origin: deps.corsOrigin === "*" ? true : deps.corsOrigin.split(","),
    },
    ...(deps.redis && {
      adapter: createAdapter(deps.redis.pub, deps.redis.sub, {
        requestsTimeout: 5_000,
      }),
    }),
  });
  const announcer = new Announcer(io, deps.chats);

  io.use((socket, next) => {
    authenticate(socket, deps).then(
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
    onConnection(socket, deps, announcer);
  });

  const heartbeat = setInterval(
    () => void keepPresence(io, deps, announcer),
    Math.max(1_000, Math.floor(deps.presenceTtlMs / 3)),
  );
  heartbeat.unref();

  return {
    io,
    announcer,
    /** Stops the heartbeat and waits for pending presence updates. */
    async stop() {
      clearInterval(heartbeat);
      await Promise.allSettled([...pending]);
    },
  };
}

async function authenticate(socket: ChatSocket, deps: SocketServerDeps) {
  if (deps.lifecycle.draining) {
    throw new AppError("UNAVAILABLE", "this node is shutting down");
  }
  const token = handshakeToken(socket);
  if (!token) throw new AppError("UNAUTHORIZED", "missing token");
  const identity = deps.tokens.verify(token);
  socket.data.userId = identity.userId;
  socket.data.expiresAt = identity.expiresAt;
  // The user room first: a chat created while the chats below are read
  // still reaches this socket through it (see Announcer.membership).
  await socket.join(userRoom(identity.userId));
  const chatIds = await deps.chats.chatIdsOf(identity.userId);
  await socket.join(chatIds.map(chatRoom));
}

function onConnection(
  socket: ChatSocket,
  deps: SocketServerDeps,
  announcer: Announcer,
): void {
  const { userId, expiresAt } = socket.data;
  const log = deps.log.child({ socket: socket.id, user: userId });
  log.info("socket connected", { transport: socket.conn.transport.name });

  const expiry = setTimeout(
    () => socket.disconnect(true),
    Math.min(Math.max(0, expiresAt - Date.now()), MAX_TIMER_MS),
  );

  void track(log, "presence", async () => {
    if (await deps.presence.connect(userId, socket.id)) {
      await announcer.presence(userId, true);
    }
  });

  socket.on("disconnect", (reason) => {
    clearTimeout(expiry);
    log.info("socket disconnected", { reason });
    void track(log, "presence", async () => {
      if (await deps.presence.disconnect(userId, socket.id)) {
        await announcer.presence(userId, false);
      }
    });
  });

  on(socket, log, deps, "message:send", SendEvent, async (input, reply) => {
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
    return { reply: sent, broadcast: () => undefined };
  });

  on(socket, log, deps, "message:read", ReadEvent, async (input) => {
    const read = await deps.messages.markRead(input.chat_id, userId, input.seq);
    return {
      reply: { last_read_seq: read.last_read_seq },
      broadcast: () => announcer.read(read),
    };
  });

  on(socket, log, deps, "typing", TypingEvent, (input) => {
    if (!socket.rooms.has(chatRoom(input.chat_id))) throw notFound("chat");
    return Promise.resolve({
      reply: {},
      broadcast: () => announcer.typing(input.chat_id, userId, input.typing),
    });
  });
}

interface Outcome<R> {
  reply: R;
  /** Broadcast, after the acknowledgement has gone. */
  broadcast: () => unknown;
}

/**
 * Registers one client event: checks the acknowledgement callback and the
 * payload, runs the handler as tracked work, acknowledges, then broadcasts.
 * Every failure becomes `{ ok: false, error }` for this socket alone.
 */
function on<S extends z.ZodType, R extends object>(
  socket: ChatSocket,
  log: Logger,
  deps: SocketServerDeps,
  event: keyof ClientToServerEvents,
  schema: S,
  handle: (
    input: z.output<S>,
    replyNow: (answer: R) => void,
  ) => Promise<Outcome<R>>,
): void {
  socket.on(event, (payload: unknown, ack: unknown) => {
    if (typeof ack !== "function") {
      log.debug("event without acknowledgement dropped", { event });
      return;
    }
    let replied = false;
    const reply = (answer: Ack<R>) => {
      if (replied) return;
      replied = true;
      (ack as (answer: Ack<R>) => void)(answer);
    };
    deps.lifecycle
      .run(() =>
        handle(schema.parse(payload), (answer) =>
          reply({ ok: true, ...answer }),
        ),
      )
      .then((outcome) => {
        reply({ ok: true, ...outcome.reply });
        outcome.broadcast();
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

const pending = new Set<Promise<void>>();

/** Runs background work, logging instead of throwing; stop() awaits it. */
function track(log: Logger, what: string, work: () => Promise<void>) {
  const running = work()
    .catch((error: unknown) => {
      log.warn(`${what} update failed`, { error });
    })
    .finally(() => pending.delete(running));
  pending.add(running);
  return running;
}

/** Refreshes this node's sockets in presence and sweeps dead nodes' ones. */
async function keepPresence(
  io: ChatServer,
  deps: SocketServerDeps,
  announcer: Announcer,
): Promise<void> {
  const local = [...io.of("/").sockets.values()].map(
    (s) => [s.data.userId, s.id] as [number, string],
  );
  await track(deps.log, "presence", async () => {
    await deps.presence.refresh(local);
    for (const userId of await deps.presence.sweep()) {
      await announcer.presence(userId, false);
    }
  });
}
