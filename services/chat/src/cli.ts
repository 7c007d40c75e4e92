import { loadToolConfig, type ToolConfig } from "./config.js";
import { type Database, openDatabase } from "./db/client.js";

/**
 * Runs a database tool (migrate, seed) on the database the environment
 * names, and closes it. A failure is one line naming the problem on
 * stderr and exit code 1, not a stack trace.
 */
export function runTool(
  work: (db: Database, config: ToolConfig) => Promise<void>,
): void {
  const run = async () => {
    const config = loadToolConfig();
    const db = await openDatabase({
      databaseUrl: config.DATABASE_URL,
      pgliteDir: config.PGLITE_DIR,
    });
    try {
      await work(db, config);
    } finally {
      await db.close();
    }
  };
  run().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
}
