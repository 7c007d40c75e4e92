import type { Redis } from "ioredis";
import { type Logger, oncePer } from "../logger.js";

/** Counts attempts per key (a user, a login) in fixed windows. */
export interface RateLimiter {
  /** Records one attempt; 0 if allowed, else milliseconds until allowed. */
  consume(key: string): Promise<number>;
}

export interface RateLimit {
  limit: number;
  windowMs: number;
}

/** One node's own count, for the embedded single-node mode. */
export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<
    string,
    { start: number; count: number }
  >();

  constructor(private readonly rule: RateLimit) {}

  consume(key: string): Promise<number> {
    const now = Date.now();
    const start = now - (now % this.rule.windowMs);
    const current = this.windows.get(key);
    if (current?.start !== start) {
      if (this.windows.size > 100_000) this.windows.clear();
      this.windows.set(key, { start, count: 1 });
      return Promise.resolve(0);
    }
    current.count += 1;
    const wait = start + this.rule.windowMs - now;
    return Promise.resolve(current.count > this.rule.limit ? wait : 0);
  }
}

/**
 * The cluster-wide count: one Redis key per key and window. When Redis
 * cannot be reached the attempt is allowed (and logged): chat keeps
 * working and the database still holds every message.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly warn = oncePer(10_000);

  constructor(
    private readonly redis: Redis,
    /** What is counted, e.g. "send": part of every key. */
    private readonly name: string,
    private readonly rule: RateLimit,
    private readonly log: Logger,
  ) {}

  async consume(subject: string): Promise<number> {
    const now = Date.now();
    const window = Math.floor(now / this.rule.windowMs);
    const key = `windi:rate:${this.name}:${subject}:${window}`;
    try {
      const [[, count]] = (await this.redis
        .multi()
        .incr(key)
        .pexpire(key, this.rule.windowMs)
        .exec()) as [[unknown, number]];
      if (count <= this.rule.limit) return 0;
      return (window + 1) * this.rule.windowMs - now;
    } catch (error) {
      if (this.warn()) this.log.warn("rate limit unavailable", { error });
      return 0;
    }
  }
}
