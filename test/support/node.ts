import { loadConfig } from "../../services/chat/src/config.js";
import { createLogger } from "../../services/chat/src/logger.js";
import { type ChatNode, startNode } from "../../services/chat/src/node.js";
import { Devices } from "./clients.js";
import { createTestDatabase, type TestDatabase } from "./db.js";

/**
 * A chat node in this process on a free port, against the given database.
 * Settings may be overridden as environment strings.
 */
export async function startTestNode(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<ChatNode> {
  const config = loadConfig({
    NODE_ENV: "test",
    HOST: "127.0.0.1",
    PORT: "0",
    DATABASE_URL: databaseUrl,
    MIGRATE_ON_START: "false",
    PASSWORD_HASH_COST: "10",
    RATE_LIMIT_MESSAGES: "1000",
    LOGIN_ATTEMPTS: "1000",
    SHUTDOWN_GRACE_MS: "2000",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "error",
    ...env,
  });
  const log = createLogger(config.LOG_LEVEL, "test-node");
  return startNode(config, log, "test-node");
}

export interface TestNodeContext {
  db: TestDatabase;
  node: ChatNode;
  devices: Devices;
}

/**
 * For a describe block: a fresh database and node before its tests, every
 * device closed after each test, all stopped and dropped at the end.
 */
export function useTestNode(env: Record<string, string> = {}): TestNodeContext {
  const ctx = { devices: new Devices() } as TestNodeContext;
  before(async () => {
    ctx.db = await createTestDatabase();
    ctx.node = await startTestNode(ctx.db.url, env);
  });
  afterEach(() => ctx.devices.closeAll());
  after(async () => {
    ctx.devices.closeAll();
    await ctx.node?.stop();
    await ctx.db?.drop();
  });
  return ctx;
}
