import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Database, SqlSession } from "./client.js";

/** prisma/migrations of the repository, seen from src/db or dist/db. */
export const MIGRATIONS_DIR = fileURLToPath(
  new URL("../../../../prisma/migrations", import.meta.url),
);

/** Any fixed number: the advisory lock that serialises migrating nodes. */
const MIGRATION_LOCK_KEY = 724_011_953;
const LOCK_WAIT_MS = 60_000;

/*
 * The same bookkeeping table that `prisma migrate deploy` keeps, so a
 * database migrated here is seen as up to date by Prisma's own CLI.
 */
const CREATE_LEDGER = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

async function readMigrations(dir: string): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(dir, name, "migration.sql"), "utf8");
      const checksum = createHash("sha256").update(sql).digest("hex");
      return { name, sql, checksum };
    }),
  );
}

async function acquireLock(session: SqlSession): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    const [row] = await session.query<{ locked: boolean }>(
      "SELECT pg_try_advisory_lock($1) AS locked",
      [MIGRATION_LOCK_KEY],
    );
    if (row?.locked) return;
    if (Date.now() > deadline) {
      throw new Error("timed out waiting for another node's migration");
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function applyPending(
  session: SqlSession,
  migrations: Migration[],
): Promise<string[]> {
  await session.exec(CREATE_LEDGER);
  const done = await session.query<{
    migration_name: string;
    checksum: string;
  }>(
    `SELECT migration_name, checksum FROM "_prisma_migrations"
     WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
  );
  const applied = new Map(done.map((r) => [r.migration_name, r.checksum]));
  const newlyApplied: string[] = [];
  for (const migration of migrations) {
    const checksum = applied.get(migration.name);
    if (checksum !== undefined) {
      if (checksum !== migration.checksum) {
        throw new Error(`migration ${migration.name} changed after it ran`);
      }
      continue;
    }
    await session.exec("BEGIN");
    try {
      await session.exec(migration.sql);
      await session.query(
        `INSERT INTO "_prisma_migrations"
           (id, checksum, migration_name, finished_at, applied_steps_count)
         VALUES ($1, $2, $3, now(), 1)`,
        [randomUUID(), migration.checksum, migration.name],
      );
      await session.exec("COMMIT");
    } catch (error) {
      await session.exec("ROLLBACK");
      throw error;
    }
    newlyApplied.push(migration.name);
  }
  return newlyApplied;
}

/**
 * Applies the migrations not yet recorded, each in its own transaction,
 * under an advisory lock so that nodes starting together take turns.
 * Returns the names of the migrations it applied.
 */
export async function migrate(
  db: Database,
  dir: string = MIGRATIONS_DIR,
): Promise<string[]> {
  const migrations = await readMigrations(dir);
  return db.withSession(async (session) => {
    await acquireLock(session);
    try {
      return await applyPending(session, migrations);
    } finally {
      await session.query("SELECT pg_advisory_unlock($1)", [
        MIGRATION_LOCK_KEY,
      ]);
    }
  });
}
