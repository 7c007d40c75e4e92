import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import pg from "pg";
import { type Database, openDatabase } from "../services/chat/src/db/client.js";
import { MIGRATIONS_DIR, migrate } from "../services/chat/src/db/migrate.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";

const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));
const MIGRATE_CLI = path.join(
  REPO_ROOT,
  "services/chat/dist/db/migrate-cli.js",
);
const SCHEMA = path.join(REPO_ROOT, "prisma/schema.prisma");

async function migrationNames(): Promise<string[]> {
  const entries = await readdir(MIGRATIONS_DIR, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

async function query<T>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

const open = (url: string) => openDatabase({ databaseUrl: url, pgliteDir: "" });

/** Tables, columns and nullability that prisma/schema.prisma declares. */
function declaredColumns(source: string): Map<string, Map<string, boolean>> {
  const models = [...source.matchAll(/^model (\w+) \{([\s\S]*?)^\}/gm)];
  const modelNames = new Set(models.map((m) => m[1]));
  const tables = new Map<string, Map<string, boolean>>();
  for (const [, name, body] of models) {
    const table = /@@map\("(\w+)"\)/.exec(body!)?.[1] ?? name!;
    const columns = new Map<string, boolean>();
    for (const line of body!.split("\n")) {
      const trimmed = line.trim();
      if (!trimmed || trimmed.startsWith("//") || trimmed.startsWith("@@"))
        continue;
      const [field, type] = trimmed.split(/\s+/);
      if (!field || !type || modelNames.has(type.replace(/[?[\]]/g, "")))
        continue;
      const column = /@map\("(\w+)"\)/.exec(trimmed)?.[1] ?? field;
      columns.set(column, type.endsWith("?"));
    }
    tables.set(table, columns);
  }
  return tables;
}

interface Run {
  code: number | null;
  output: string;
}

function runCli(databaseUrl: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MIGRATE_CLI],
      {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl },
        timeout: 20_000,
      },
      (error, stdout, stderr) => {
        const code = error
          ? typeof error.code === "number"
            ? error.code
            : null
          : 0;
        resolve({ code, output: stdout + stderr });
      },
    );
  });
}

describe("migrations", () => {
  const databases: TestDatabase[] = [];
  const handles: Database[] = [];

  async function freshDatabase(): Promise<TestDatabase> {
    const db = await createTestDatabase({ migrated: false });
    databases.push(db);
    return db;
  }

  after(async () => {
    await Promise.allSettled(handles.splice(0).map((h) => h.close()));
    await Promise.allSettled(databases.splice(0).map((d) => d.drop()));
  });

  it("when three nodes migrate one fresh database at once, each migration is applied exactly once, and a second run applies nothing", async () => {
    const db = await freshDatabase();
    const nodes = await Promise.all([open(db.url), open(db.url), open(db.url)]);
    handles.push(...nodes);

    const applied = await Promise.all(nodes.map((n) => migrate(n)));

    const names = await migrationNames();
    expect(names).to.have.length.above(0);
    expect(applied.flat().sort()).to.deep.equal(names);
    const rows = await query<{
      migration_name: string;
      checksum: string;
      finished_at: Date | null;
      rolled_back_at: Date | null;
    }>(
      db.url,
      `SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY migration_name`,
    );
    expect(rows.map((r) => r.migration_name)).to.deep.equal(names);
    for (const row of rows) {
      const sql = await readFile(
        path.join(MIGRATIONS_DIR, row.migration_name, "migration.sql"),
        "utf8",
      );
      expect(row.checksum).to.equal(
        createHash("sha256").update(sql).digest("hex"),
      );
      expect(row.finished_at).to.be.instanceOf(Date);
      expect(row.rolled_back_at).to.equal(null);
    }

    const user = await nodes[1].prisma.user.create({
      data: {
        name: "after-migrate",
        email: "after@example.test",
        passwordHash: "x",
      },
    });
    expect(user.id).to.be.a("number");

    const again = await Promise.all(nodes.map((n) => migrate(n)));
    expect(again).to.deep.equal([[], [], []]);
    const count = await query<{ n: number }>(
      db.url,
      `SELECT count(*)::int AS n FROM "_prisma_migrations"`,
    );
    expect(count[0]!.n).to.equal(names.length);
  });

  it("when the migrated tables are compared with prisma/schema.prisma, every model column exists with the same nullability and nothing else", async () => {
    const db = await freshDatabase();
    const node = await open(db.url);
    handles.push(node);
    await migrate(node);

    const declared = declaredColumns(readFileSync(SCHEMA, "utf8"));
    const rows = await query<{
      table_name: string;
      column_name: string;
      is_nullable: string;
    }>(
      db.url,
      `SELECT table_name, column_name, is_nullable FROM information_schema.columns
       WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'`,
    );
    const actual = new Map<string, Map<string, boolean>>();
    for (const row of rows) {
      const columns = actual.get(row.table_name) ?? new Map<string, boolean>();
      columns.set(row.column_name, row.is_nullable === "YES");
      actual.set(row.table_name, columns);
    }
    expect([...actual.keys()].sort()).to.deep.equal(
      [...declared.keys()].sort(),
    );
    for (const [table, columns] of declared) {
      expect(Object.fromEntries(actual.get(table)!), table).to.deep.equal(
        Object.fromEntries(columns),
      );
    }
  });

  it("when every model of the Prisma client is written and read back, the migrated schema holds it, with its limits and unique keys", async () => {
    const db = await freshDatabase();
    const node = await open(db.url);
    handles.push(node);
    await migrate(node);
    const { prisma } = node;
    const at = new Date("2026-01-02T03:04:05.678Z");

    const alice = await prisma.user.create({
      data: {
        name: "a".repeat(64),
        email: "alice@example.test",
        passwordHash: "scrypt$10$s$k",
        createdAt: at,
      },
    });
    const bob = await prisma.user.create({
      data: { name: "bob", email: "bob@example.test", passwordHash: "h" },
    });
    const chat = await prisma.chat.create({
      data: {
        type: "private",
        name: null,
        creatorId: alice.id,
        createdAt: at,
        lastSeq: 1,
        lastActivityAt: at,
        privateKey: `${alice.id}:${bob.id}`,
      },
    });
    const group = await prisma.chat.create({
      data: { type: "group", name: "g".repeat(128), creatorId: bob.id },
    });
    await prisma.member.create({
      data: {
        chatId: chat.id,
        userId: alice.id,
        role: "owner",
        joinedAt: at,
        lastReadSeq: 1,
      },
    });
    await prisma.member.create({ data: { chatId: chat.id, userId: bob.id } });
    await prisma.member.create({
      data: { chatId: group.id, userId: bob.id, role: "owner" },
    });
    const text = "😀".repeat(4000);
    const message = await prisma.message.create({
      data: {
        chatId: chat.id,
        senderId: alice.id,
        text,
        createdAt: at,
        seq: 1,
        clientId: "c".repeat(64),
      },
    });

    const readUser = await prisma.user.findUniqueOrThrow({
      where: { email: "alice@example.test" },
      include: { memberships: true, chatsCreated: true, messages: true },
    });
    expect(readUser).to.deep.include({
      name: "a".repeat(64),
      passwordHash: "scrypt$10$s$k",
      createdAt: at,
    });
    expect(readUser.memberships).to.have.length(1);
    expect(readUser.chatsCreated.map((c) => c.id)).to.deep.equal([chat.id]);
    expect(readUser.messages.map((m) => m.id)).to.deep.equal([message.id]);

    const readChat = await prisma.chat.findUniqueOrThrow({
      where: { privateKey: `${alice.id}:${bob.id}` },
      include: {
        members: { orderBy: { userId: "asc" } },
        messages: true,
        creator: true,
      },
    });
    expect(readChat).to.deep.include({
      type: "private",
      name: null,
      lastSeq: 1,
      createdAt: at,
      lastActivityAt: at,
    });
    expect(readChat.creator.id).to.equal(alice.id);
    expect(
      readChat.members.map((m) => [m.userId, m.role, m.lastReadSeq]),
    ).to.deep.equal([
      [alice.id, "owner", 1],
      [bob.id, "member", 0],
    ]);
    expect(readChat.members[0]!.joinedAt).to.deep.equal(at);
    expect(readChat.members[1]!.joinedAt).to.be.instanceOf(Date);
    expect(readChat.messages[0]).to.deep.include({
      text,
      seq: 1,
      clientId: "c".repeat(64),
      createdAt: at,
    });

    const readGroup = await prisma.chat.findUniqueOrThrow({
      where: { id: group.id },
    });
    expect(readGroup).to.deep.include({
      type: "group",
      name: "g".repeat(128),
      lastSeq: 0,
      privateKey: null,
    });
    expect(Math.abs(readGroup.createdAt.getTime() - Date.now())).to.be.below(
      60_000,
    );
    const readMessage = await prisma.message.findUniqueOrThrow({
      where: { chatId_seq: { chatId: chat.id, seq: 1 } },
      include: { chat: true, sender: true },
    });
    expect(readMessage.sender.id).to.equal(alice.id);

    const refusals: [string, () => Promise<unknown>][] = [
      [
        "user name over 64",
        () =>
          prisma.user.create({
            data: {
              name: "n".repeat(65),
              email: "n@x.test",
              passwordHash: "h",
            },
          }),
      ],
      [
        "duplicate email",
        () =>
          prisma.user.create({
            data: {
              name: "other",
              email: "bob@example.test",
              passwordHash: "h",
            },
          }),
      ],
      [
        "duplicate name",
        () =>
          prisma.user.create({
            data: { name: "bob", email: "other@x.test", passwordHash: "h" },
          }),
      ],
      [
        "group name over 128",
        () =>
          prisma.chat.create({
            data: { type: "group", name: "g".repeat(129), creatorId: bob.id },
          }),
      ],
      [
        "duplicate private key",
        () =>
          prisma.chat.create({
            data: {
              type: "private",
              creatorId: bob.id,
              privateKey: `${alice.id}:${bob.id}`,
            },
          }),
      ],
      [
        "duplicate member",
        () =>
          prisma.member.create({ data: { chatId: chat.id, userId: bob.id } }),
      ],
      [
        "text over 4000",
        () =>
          prisma.message.create({
            data: {
              chatId: chat.id,
              senderId: bob.id,
              text: "x".repeat(4001),
              createdAt: at,
              seq: 2,
            },
          }),
      ],
      [
        "duplicate seq",
        () =>
          prisma.message.create({
            data: {
              chatId: chat.id,
              senderId: bob.id,
              text: "x",
              createdAt: at,
              seq: 1,
            },
          }),
      ],
      [
        "duplicate client id",
        () =>
          prisma.message.create({
            data: {
              chatId: chat.id,
              senderId: alice.id,
              text: "x",
              createdAt: at,
              seq: 3,
              clientId: "c".repeat(64),
            },
          }),
      ],
      [
        "unknown chat",
        () =>
          prisma.member.create({ data: { chatId: 999_999, userId: bob.id } }),
      ],
    ];
    for (const [what, attempt] of refusals) {
      let refused = false;
      await attempt().catch(() => (refused = true));
      expect(refused, what).to.equal(true);
    }
    const sameClientOtherSender = await prisma.message.create({
      data: {
        chatId: chat.id,
        senderId: bob.id,
        text: "x",
        createdAt: at,
        seq: 2,
        clientId: "c".repeat(64),
      },
    });
    expect(sameClientOtherSender.seq).to.equal(2);

    await prisma.chat.delete({ where: { id: chat.id } });
    expect(await prisma.member.count({ where: { chatId: chat.id } })).to.equal(
      0,
    );
    expect(await prisma.message.count({ where: { chatId: chat.id } })).to.equal(
      0,
    );
  });

  it("when `npm run db:migrate` runs twice on a fresh database, both runs exit 0 and only the first applies", async () => {
    const pkg = JSON.parse(
      readFileSync(path.join(REPO_ROOT, "package.json"), "utf8"),
    );
    expect(pkg.scripts["db:migrate"]).to.contain(
      "services/chat/dist/db/migrate-cli.js",
    );
    expect(
      existsSync(MIGRATE_CLI),
      "build first: npx tsc -b services/chat",
    ).to.equal(true);
    const db = await freshDatabase();

    const first = await runCli(db.url);
    expect(first.code, first.output).to.equal(0);
    const names = await migrationNames();
    for (const name of names) expect(first.output).to.contain(name);
    const second = await runCli(db.url);
    expect(second.code, second.output).to.equal(0);
    expect(second.output).to.contain("up to date");

    const rows = await query<{ n: number }>(
      db.url,
      `SELECT count(*)::int AS n FROM "_prisma_migrations"`,
    );
    expect(rows[0]!.n).to.equal(names.length);
    const tables = await query<{ n: number }>(
      db.url,
      `SELECT count(*)::int AS n FROM information_schema.tables
       WHERE table_schema = 'public' AND table_name IN ('users', 'chats', 'members', 'messages')`,
    );
    expect(tables[0]!.n).to.equal(4);
  });
});
