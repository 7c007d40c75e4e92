import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  MemoryPresence,
  type Presence,
  RedisPresence,
} from "./cluster/presence.js";
import {
  MemoryRateLimiter,
  type RateLimiter,
  RedisRateLimiter,
} from "./cluster/rate-limit.js";
import { connectRedis, type RedisClients } from "./cluster/redis.js";
import type { Config } from "./config.js";
import { type Database, openDatabase } from "./db/client.js";
import { migrate } from "./db/migrate.js";
import { Chats } from "./domain/chats.js";
import { Messages } from "./domain/messages.js";
import { Tokens } from "./domain/tokens.js";
import { Users } from "./domain/users.js";
import { createApp } from "./http/app.js";
import { Lifecycle } from "./lifecycle.js";
import type { Logger } from "./logger.js";
import { createSocketServer } from "./realtime/socket-server.js";

export interface ChatNode {
  /** Base URL, e.g. http://127.0.0.1:3000 */
  url: string;
  port: number;
  http: Server;
  db: Database;
  /** Drains and stops: refuses new work, closes sockets, closes stores. */
  stop(): Promise<void>;
}

const STARTUP_CHECK_MS = 10_000;

function withTimeout<T>(
  work: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out`)), ms);
  });
  return Promise.race([work, expiry]).finally(() => clearTimeout(timer));
}

async function openStores(config: Config, log: Logger) {
  const db = await openDatabase({
    databaseUrl: config.DATABASE_URL,
    pgliteDir: config.PGLITE_DIR,
    onError: (error) =>
      log.warn("database connection error", { error: error.message }),
  });
  // Through the driver, whose errors name the problem plainly.
  await withTimeout(
    db.withSession((session) => session.query("SELECT 1")),
    STARTUP_CHECK_MS,
    "database check",
  );
  if (config.MIGRATE_ON_START) {
    const applied = await migrate(db);
    if (applied.length) log.info("migrations applied", { applied });
  }
  const redis = config.REDIS_URL
    ? await connectRedis(config.REDIS_URL, log)
    : undefined;
  return { db, redis };
}

function clusterState(
  config: Config,
  redis: RedisClients | undefined,
  log: Logger,
) {
  const limiter = (name: string, limit: number, windowMs: number) =>
    redis
      ? new RedisRateLimiter(redis.command, name, { limit, windowMs }, log)
      : new MemoryRateLimiter({ limit, windowMs });
  const ttlMs = config.PRESENCE_TTL_SECONDS * 1000;
  const presence: Presence = redis
    ? new RedisPresence(redis.command, ttlMs, log)
    : new MemoryPresence();
  const sends: RateLimiter = limiter(
    "send",
    config.RATE_LIMIT_MESSAGES,
    config.RATE_LIMIT_WINDOW_MS,
  );
  const logins: RateLimiter = limiter(
    "login",
    config.LOGIN_ATTEMPTS,
    config.LOGIN_WINDOW_MS,
  );
  return { presence, sends, logins };
}

/**
 * Starts one chat node: stores, domain, REST and Socket.IO on one port.
 * Used by `npm start` and by the tests, which start nodes on port 0.
 */
export async function startNode(
  config: Config,
  log: Logger,
  nodeId: string,
): Promise<ChatNode> {
  const { db, redis } = await openStores(config, log);
  const { presence, sends, logins } = clusterState(config, redis, log);
  const users = new Users(db.prisma, config.PASSWORD_HASH_COST, logins);
  const chats = new Chats(db.prisma, users, presence);
  const messages = new Messages(db.prisma, sends);
  const tokens = new Tokens(config.JWT_SECRET, config.JWT_TTL_SECONDS);
  const lifecycle = new Lifecycle();

  const sockets = createSocketServer({
    chats,
    messages,
    tokens,
    presence,
    lifecycle,
    log,
    redis,
    maxFrameBytes: config.SOCKET_MAX_BYTES,
    corsOrigin: config.CORS_ORIGIN,
    presenceTtlMs: config.PRESENCE_TTL_SECONDS * 1000,
  });
  const app = createApp({
    domain: { users, chats, messages, tokens },
    announcer: sockets.announcer,
    lifecycle,
    log,
    nodeId,
    corsOrigin: config.CORS_ORIGIN,
    ready: async () => {
      await withTimeout(db.prisma.$queryRaw`SELECT 1`, 2_000, "database");
      if (redis) await withTimeout(redis.command.ping(), 2_000, "redis");
    },
  });

  const http = createServer(app);
  sockets.io.attach(http);
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(config.PORT, config.HOST, resolve);
  });
  const { port } = http.address() as AddressInfo;
  const host =
    config.HOST === "0.0.0.0" || config.HOST === "::"
      ? "127.0.0.1"
      : config.HOST;

  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    http,
    db,
    async stop() {
      http.close();
      await lifecycle.drain(config.SHUTDOWN_GRACE_MS);
      await sockets.closeTransports();
      http.closeAllConnections();
      await sockets.stop();
      await sockets.io.close();
      await redis?.close();
      await db.close();
    },
  };
}
