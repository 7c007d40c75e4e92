import { once } from "node:events";
import { Redis } from "ioredis";
import type { Logger } from "../logger.js";

export interface RedisClients {
  /** Commands: presence, rate limits, readiness. */
  command: Redis;
  /** The Socket.IO adapter's publisher and subscriber. */
  pub: Redis;
  sub: Redis;
  close(): Promise<void>;
}

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Three connections to one Redis. Commands fail at once while Redis is
 * away (no offline queue), so callers fall back instead of piling up; the
 * clients keep reconnecting and the subscriber resubscribes by itself.
 */
export async function connectRedis(
  url: string,
  log: Logger,
): Promise<RedisClients> {
  const options = {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    commandTimeout: 2_000,
    connectTimeout: 5_000,
    retryStrategy: (attempt: number) => Math.min(attempt * 200, 2_000),
  };
  const command = new Redis(url, { ...options, enableOfflineQueue: false });
  const pub = new Redis(url, { ...options, enableOfflineQueue: false });
  const sub = new Redis(url, { ...options, commandTimeout: undefined });
  const clients = { command, pub, sub };

  for (const [role, client] of Object.entries(clients)) {
    let down = false;
    client.on("error", (error: Error) => {
      if (!down)
        log.warn("redis connection lost", { role, error: error.message });
      down = true;
    });
    client.on("ready", () => {
      if (down) log.info("redis connection back", { role });
      down = false;
    });
  }

  // The adapter publishes without waiting for the answer. While Redis is
  // away each publish fails (the loss is logged once above, and clients
  // catch up from history): keep those failures from surfacing as
  // unhandled rejections, one per broadcast.
  const publish = pub.publish.bind(pub);
  pub.publish = (channel: string, message: string) =>
    publish(channel, message).catch(() => 0);

  const all = Object.values(clients);
  const timeout = AbortSignal.timeout(CONNECT_TIMEOUT_MS);
  await Promise.all(
    all.map(async (client) => {
      await client.connect();
      if (client.status !== "ready")
        await once(client, "ready", { signal: timeout });
    }),
  ).catch((error: unknown) => {
    all.forEach((client) => client.disconnect());
    throw new Error(`cannot reach Redis at REDIS_URL: ${String(error)}`);
  });

  return {
    ...clients,
    async close() {
      await Promise.allSettled(all.map((client) => client.quit()));
    },
  };
}
