import { z } from "zod";

const DEV_JWT_SECRET = "windi-dev-secret-change-me";

const booleanFlag = z
  .enum(["true", "false", "1", "0"])
  .transform((value) => value === "true" || value === "1");

const positiveInt = z.coerce.number().int().positive();

/** Every setting the node reads, with its default. See .env.example. */
const settings = z.object({
  NODE_ENV: z
    .enum(["development", "production", "test"])
    .default("development"),
  /** Loopback by default: set 0.0.0.0 to serve other machines. */
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** PostgreSQL URL; without it the node runs on embedded PGlite. */
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  /** Folder of the embedded database, used when DATABASE_URL is unset. */
  PGLITE_DIR: z.string().min(1).default("./data/pglite"),
  /** Redis URL; without it the node uses in-memory rooms and presence. */
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  JWT_SECRET: z.string().min(16).default(DEV_JWT_SECRET),
  JWT_TTL_SECONDS: positiveInt.default(86_400),
  /** Apply pending migrations before serving. */
  MIGRATE_ON_START: booleanFlag.default(true),
  LOG_LEVEL: z
    .enum(["error", "warn", "info", "http", "verbose", "debug", "silly"])
    .default("info"),
  /** Names this node in logs; defaults to host name and process id. */
  NODE_ID: z.string().min(1).optional(),
  /** Messages one user may send per window, across the cluster. */
  RATE_LIMIT_MESSAGES: positiveInt.default(30),
  RATE_LIMIT_WINDOW_MS: positiveInt.default(10_000),
  /** Log-in attempts per name and client address per window. */
  LOGIN_ATTEMPTS: positiveInt.default(10),
  LOGIN_WINDOW_MS: positiveInt.default(60_000),
  /** Largest Socket.IO frame accepted, in bytes. */
  SOCKET_MAX_BYTES: positiveInt.default(64 * 1024),
  /** Seconds a presence entry lives without a heartbeat from its node. */
  PRESENCE_TTL_SECONDS: positiveInt.default(30),
  /** Milliseconds a draining node waits for work in flight on SIGTERM. */
  SHUTDOWN_GRACE_MS: positiveInt.default(8_000),
  CORS_ORIGIN: z.string().default("*"),
  /** Cost of the scrypt password hash, as log2(N). */
  PASSWORD_HASH_COST: z.coerce.number().int().min(10).max(20).default(15),
});

/** The names of every setting, as .env.example lists them. */
export const SETTING_NAMES = Object.keys(settings.shape);

const configSchema = settings.refine(
  (c) => c.NODE_ENV !== "production" || c.JWT_SECRET !== DEV_JWT_SECRET,
  { path: ["JWT_SECRET"], message: "must be set in production" },
);

/** The settings of the database tools (migrate, seed). */
const toolSchema = settings.pick({
  DATABASE_URL: true,
  PGLITE_DIR: true,
  PASSWORD_HASH_COST: true,
});

export type Config = z.infer<typeof configSchema>;

/** True when tokens are signed with the published development secret. */
export const usesDevSecret = (config: Config): boolean =>
  config.JWT_SECRET === DEV_JWT_SECRET;

/** Raised when the environment holds a bad setting; names the variable. */
export class ConfigError extends Error {}

function parseEnv<T extends z.ZodType>(
  schema: T,
  env: NodeJS.ProcessEnv,
): z.output<T> {
  const blankless = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== ""),
  );
  const parsed = schema.safeParse(blankless);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join(".")}: ${issue.message}`,
    );
    throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  }
  return parsed.data;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseEnv(configSchema, env);
}

export type ToolConfig = z.output<typeof toolSchema>;

/** Only what the database tools need: no secrets required. */
export function loadToolConfig(
  env: NodeJS.ProcessEnv = process.env,
): ToolConfig {
  return parseEnv(toolSchema, env);
}

/** CORS_ORIGIN as REST and Socket.IO both read it: any, or a list. */
export function corsOrigins(setting: string): true | string[] {
  if (setting.trim() === "*") return true;
  return setting.split(",").map((origin) => origin.trim());
}
