import { runTool } from "../cli.js";
import { loadToolConfig } from "../config.js";
import { openDatabase } from "./client.js";
import { migrate } from "./migrate.js";

/** `npm run db:migrate`: applies pending migrations, then exits. */
runTool(async () => {
  const config = loadToolConfig();
  const db = await openDatabase({
    databaseUrl: config.DATABASE_URL,
    pgliteDir: config.PGLITE_DIR,
  });
  try {
    const applied = await migrate(db);
    const target = db.kind === "postgres" ? "PostgreSQL" : config.PGLITE_DIR;
    console.log(
      applied.length
        ? `applied ${applied.length} migration(s) to ${target}: ${applied.join(", ")}`
        : `${target} is up to date`,
    );
  } finally {
    await db.close();
  }
});
