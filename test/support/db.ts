import { randomBytes } from "node:crypto";
import pg from "pg";
import { openDatabase } from "../../services/chat/src/db/client.js";
import { migrate } from "../../services/chat/src/db/migrate.js";

/** The server the tests create their databases on. */
export const ADMIN_URL =
  process.env.TEST_DATABASE_URL ??
  "postgresql://postgres@127.0.0.1:5432/postgres";

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

function urlFor(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: ADMIN_URL,
    connectionTimeoutMillis: 5_000,
  });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * A fresh, empty PostgreSQL database for one test file; migrated unless
 * `migrated` is false.
 */
export async function createTestDatabase({
  migrated = true,
}: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = `windi_test_${randomBytes(6).toString("hex")}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = urlFor(name);
  if (migrated) {
    const db = await openDatabase({ databaseUrl: url, pgliteDir: "" });
    try {
      await migrate(db);
    } finally {
      await db.close();
    }
  }
  return {
    url,
    drop: () =>
      admin(async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      }),
  };
}
