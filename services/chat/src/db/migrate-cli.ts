import { runTool } from "../cli.js";
import { migrate } from "./migrate.js";

/** `npm run db:migrate`: applies pending migrations, then exits. */
runTool(async (db, config) => {
  const applied = await migrate(db);
  const target = db.kind === "postgres" ? "PostgreSQL" : config.PGLITE_DIR;
  console.log(
    applied.length
      ? `applied ${applied.length} migration(s) to ${target}: ${applied.join(", ")}`
      : `${target} is up to date`,
  );
});
