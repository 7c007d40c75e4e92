import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaClient } from "../generated/prisma/client.js";

/** A plain SQL connection, for migrations: scripts and parameterised rows. */
export interface SqlSession {
  exec(script: string): Promise<void>;
  query<T>(text: string, params?: unknown[]): Promise<T[]>;
}

export interface Database {
  prisma: PrismaClient;
  kind: "postgres" | "pglite";
  /** Runs `work` on one dedicated connection, released afterwards. */
  withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined;
  pgliteDir: string;
  onError?: (error: Error) => void;
}

/** PostgreSQL when a URL is given, else PGlite stored in a folder. */
export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.databaseUrl) return openPostgres(opts.databaseUrl, opts.onError);
  return openPglite(opts.pgliteDir);
}

function openPostgres(
  url: string,
  onError: ((error: Error) => void) | undefined,
): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: 5_000,
  });
  pool.on("error", (error) => onError?.(error));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    prisma,
    kind: "postgres",
    async withSession(work) {
      const client = await pool.connect();
      try {
        return await work({
          exec: async (script) => void (await client.query(script)),
          query: async <T>(text: string, params?: unknown[]) =>
            (await client.query(text, params)).rows as T[],
        });
      } finally {
        client.release();
      }
    },
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

/** True while a process with this id runs. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * PGlite is one process's database: two processes on one folder corrupt
 * it. A lock file beside the folder, naming its process, keeps a second
 * one out; a lock left by a process that died is taken over.
 */
function lockFolder(dir: string): () => void {
  const lock = `${dir.replace(/[\\/]+$/, "")}.lock`;
  try {
    writeFileSync(lock, String(process.pid), { flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const owner = Number(readFileSync(lock, "utf8"));
    if (owner !== process.pid && isRunning(owner)) {
      throw new Error(
        `the embedded database in ${dir} is in use by process ${owner}: stop it first, or set DATABASE_URL`,
        { cause: error },
      );
    }
    writeFileSync(lock, String(process.pid));
  }
  return () => rmSync(lock, { force: true });
}

async function openPglite(dir: string): Promise<Database> {
  mkdirSync(dir, { recursive: true });
  const unlock = lockFolder(dir);
  const lite = await PGlite.create(dir).catch((error: unknown) => {
    unlock();
    throw error;
  });
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(lite) });
  const session: SqlSession = {
    exec: async (script) => void (await lite.exec(script)),
    query: async <T>(text: string, params?: unknown[]) =>
      (await lite.query<T>(text, params)).rows,
  };
  return {
    prisma,
    kind: "pglite",
    withSession: (work) => work(session),
    async close() {
      await prisma.$disconnect();
      await lite.close();
      unlock();
    },
  };
}
