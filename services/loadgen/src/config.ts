/** Settings of a bench run, read from the environment. */
export interface BenchConfig {
  /** Where clients go: nginx, one node, or several nodes (spread over). */
  urls: string[];
  users: number;
  /** Users are split into group chats of about this many members. */
  groupSize: number;
  /** Upper bound on the sends of one user. */
  messagesPerUser: number;
  /** Sends per second per user. */
  rate: number;
  /** Upper bound on the sending phase, in seconds. */
  durationS: number;
  /** How long a send waits for its acknowledgement. */
  ackTimeoutMs: number;
  /** How long the bench waits for deliveries after the last ack. */
  drainMs: number;
  /** Also measure the bare Socket.IO echo server (the baseline). */
  baseline: boolean;
}

/** A bad setting; the message names the variable. */
export class ConfigError extends Error {}

type Env = NodeJS.ProcessEnv;

function number(env: Env, name: string, fallback: number, max: number) {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || value > max) {
    throw new ConfigError(`${name}: must be a number in (0, ${max}]`);
  }
  return value;
}

function integer(env: Env, name: string, fallback: number, max: number) {
  const value = number(env, name, fallback, max);
  if (!Number.isInteger(value)) {
    throw new ConfigError(`${name}: must be a whole number`);
  }
  return value;
}

function urls(raw: string | undefined): string[] {
  const list = (raw || "http://127.0.0.1:3000")
    .split(",")
    .map((url) => url.trim().replace(/\/+$/, ""))
    .filter((url) => url !== "");
  for (const url of list) {
    if (!/^https?:\/\/[^/]+$/.test(url)) {
      throw new ConfigError(`BENCH_URL: not an http(s) origin: ${url}`);
    }
  }
  if (list.length === 0) throw new ConfigError("BENCH_URL: empty");
  return list;
}

/** Defaults fit a 2-core machine and a run of well under a minute. */
export function loadConfig(env: Env = process.env): BenchConfig {
  const config: BenchConfig = {
    urls: urls(env.BENCH_URL),
    users: integer(env, "BENCH_USERS", 50, 5_000),
    groupSize: integer(env, "BENCH_GROUP_SIZE", 10, 500),
    messagesPerUser: integer(env, "BENCH_MESSAGES_PER_USER", 40, 100_000),
    rate: number(env, "BENCH_RATE", 2, 1_000),
    durationS: number(env, "BENCH_DURATION_S", 20, 3_600),
    ackTimeoutMs: integer(env, "BENCH_ACK_TIMEOUT_MS", 5_000, 60_000),
    drainMs: integer(env, "BENCH_DRAIN_MS", 5_000, 60_000),
    baseline: env.BENCH_BASELINE !== "false" && env.BENCH_BASELINE !== "0",
  };
  if (config.users < 2) throw new ConfigError("BENCH_USERS: at least 2");
  if (config.groupSize < 2) {
    throw new ConfigError("BENCH_GROUP_SIZE: at least 2");
  }
  return config;
}
