import type { Redis } from "ioredis";
import type { OnlineLookup } from "../domain/chats.js";
import { type Logger, oncePer } from "../logger.js";

/**
 * Who is online: a user is online while any of their sockets is connected
 * to any node. Each method that changes it says whether the user's state
 * flipped, so that exactly one caller announces it.
 */
export interface Presence extends OnlineLookup {
  /** Records a socket; true if its user was offline until now. */
  connect(userId: number, socketKey: string): Promise<boolean>;
  /** Forgets a socket; true if it was its user's last one. */
  disconnect(userId: number, socketKey: string): Promise<boolean>;
  /**
   * Keeps this node's sockets alive; see the Redis implementation. Returns
   * the users that this made online again (after Redis was lost).
   */
  refresh(sockets: readonly [number, string][]): Promise<number[]>;
  /** Users whose last socket expired (its node died); each told once. */
  sweep(): Promise<number[]>;
}

/** Presence of one node's own sockets, for the embedded mode. */
export class MemoryPresence implements Presence {
  private readonly sockets = new Map<number, Set<string>>();

  connect(userId: number, socketKey: string): Promise<boolean> {
    const mine = this.sockets.get(userId) ?? new Set<string>();
    this.sockets.set(userId, mine.add(socketKey));
    return Promise.resolve(mine.size === 1);
  }

  disconnect(userId: number, socketKey: string): Promise<boolean> {
    const mine = this.sockets.get(userId);
    if (!mine?.delete(socketKey)) return Promise.resolve(false);
    if (mine.size > 0) return Promise.resolve(false);
    this.sockets.delete(userId);
    return Promise.resolve(true);
  }

  refresh(): Promise<number[]> {
    return Promise.resolve([]);
  }

  sweep(): Promise<number[]> {
    return Promise.resolve([]);
  }

  onlineAmong(userIds: readonly number[]): Promise<Set<number>> {
    return Promise.resolve(
      new Set(userIds.filter((id) => this.sockets.has(id))),
    );
  }
}

const ONLINE = "windi:presence:online";
const socketsKey = (userId: number | string) => `windi:presence:user:${userId}`;

/* KEYS: user's sockets, online set. ARGV: socket, now, ttl, user. */
const CONNECT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local before = redis.call('ZCARD', KEYS[1])
local expires = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], expires, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], 'GT', expires, ARGV[4])
if before == 0 then return 1 end
return 0`;

/* KEYS: user's sockets, online set. ARGV: socket, now, ttl, user. */
const REFRESH = `
local expires = tonumber(ARGV[2]) + tonumber(ARGV[3])
if redis.call('ZADD', KEYS[1], 'XX', 'CH', expires, ARGV[1]) == 0 then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], 'GT', expires, ARGV[4])
return 1`;

/*
 * KEYS: user's sockets, online set. ARGV: socket, now, user. Says the user
 * is gone whenever no socket is left, even if this one's entry was lost
 * with a restarted Redis, so that its leaving is still told.
 */
const DISCONNECT = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
return 1`;

/* KEYS: online set. ARGV: now, prefix of the sockets keys. */
const SWEEP = `
local gone = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)
for _, user in ipairs(due) do
  local key = ARGV[2] .. user
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if newest[2] then
    redis.call('ZADD', KEYS[1], newest[2], user)
  else
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], user)
    table.insert(gone, user)
  end
end
return gone`;

/**
 * Cluster-wide presence in Redis. Each socket is an entry that expires
 * `ttlMs` after its node last refreshed it, so the sockets of a node that
 * died without a word disappear within `ttlMs`, and the next sweep (from
 * any node) reports their users as gone.
 */
export class RedisPresence implements Presence {
  private readonly warn = oncePer(10_000);
  /** Set when the connection drops: Redis may come back empty. */
  private lost = false;

  constructor(
    private readonly redis: Redis,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {
    redis.on("close", () => {
      this.lost = true;
    });
  }

  async connect(userId: number, socketKey: string): Promise<boolean> {
    const flipped = await this.redis.eval(
      CONNECT,
      2,
      socketsKey(userId),
      ONLINE,
      socketKey,
      Date.now(),
      this.ttlMs,
      userId,
    );
    return flipped === 1;
  }

  async disconnect(userId: number, socketKey: string): Promise<boolean> {
    const flipped = await this.redis.eval(
      DISCONNECT,
      2,
      socketsKey(userId),
      ONLINE,
      socketKey,
      Date.now(),
      userId,
    );
    return flipped === 1;
  }

  /**
   * Pushes back the expiry of this node's sockets. Only entries still in
   * Redis are touched, so a socket that just disconnected is not brought
   * back; after Redis itself was lost (restarted empty), every socket is
   * entered again.
   */
  async refresh(sockets: readonly [number, string][]): Promise<number[]> {
    const restore = this.lost;
    this.lost = false;
    const now = Date.now();
    const batch = this.redis.pipeline();
    for (const [userId, socketKey] of sockets) {
      batch.eval(
        restore ? CONNECT : REFRESH,
        2,
        socketsKey(userId),
        ONLINE,
        socketKey,
        now,
        this.ttlMs,
        userId,
      );
    }
    const results = (await batch.exec()) ?? [];
    const failed = results.find(([error]) => error)?.[0];
    if (failed) {
      this.lost ||= restore;
      throw failed;
    }
    if (!restore) return [];
    const back = sockets.filter((_, i) => results[i]?.[1] === 1);
    return [...new Set(back.map(([userId]) => userId))];
  }

  async sweep(): Promise<number[]> {
    const gone = (await this.redis.eval(
      SWEEP,
      1,
      ONLINE,
      Date.now(),
      socketsKey(""),
    )) as string[];
    return gone.map(Number);
  }

  async onlineAmong(userIds: readonly number[]): Promise<Set<number>> {
    if (userIds.length === 0) return new Set();
    try {
      const scores = await this.redis.zmscore(ONLINE, ...userIds);
      const now = Date.now();
      return new Set(userIds.filter((_, i) => Number(scores[i] ?? 0) > now));
    } catch (error) {
      if (this.warn()) this.log.warn("presence unavailable", { error });
      return new Set();
    }
  }
}
