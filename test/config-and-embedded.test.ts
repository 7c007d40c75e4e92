import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import {
  ConfigError,
  loadConfig,
  SETTING_NAMES,
} from "../services/chat/src/config.js";
import {
  Api,
  Devices,
  newUsers,
  settle,
  type TestUser,
} from "./support/clients.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";

const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));
const MAIN = path.join(REPO_ROOT, "services/chat/dist/main.js");
const PASSWORD = "correct horse battery";

function configError(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** `node services/chat/dist/main.js` with only the given environment. */
class NodeProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
  }>;
  output = "";
  /** What the node wrote to stdout alone. */
  stdout = "";

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, [MAIN], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => (this.output += chunk));
    }
    this.child.stdout!.on("data", (chunk: string) => (this.stdout += chunk));
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => resolve({ code, signal }));
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** JSON log lines written so far. */
  logs(): Record<string, unknown>[] {
    return this.output
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  async waitHealthy(url: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running)
        throw new Error(`node exited while starting:\n${this.output}`);
      try {
        const res = await fetch(`${url}/healthz`, {
          signal: AbortSignal.timeout(1_000),
        });
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await delay(100);
    }
    throw new Error(`node not healthy after ${timeoutMs} ms:\n${this.output}`);
  }

  /** Sends SIGTERM; resolves with the exit and how long it took. */
  async terminate(timeoutMs = 12_000) {
    const started = Date.now();
    this.child.kill("SIGTERM");
    const exit = await Promise.race([
      this.exited,
      delay(timeoutMs).then(() => undefined),
    ]);
    if (!exit) {
      this.child.kill("SIGKILL");
      throw new Error(
        `node did not exit within ${timeoutMs} ms of SIGTERM:\n${this.output}`,
      );
    }
    return { ...exit, elapsedMs: Date.now() - started };
  }
}

describe("configuration", () => {
  it("when PORT, DATABASE_URL or RATE_LIMIT_MESSAGES is bad, loadConfig fails naming the variable", () => {
    const cases: [Record<string, string>, string][] = [
      [{ PORT: "abc" }, "PORT"],
      [{ PORT: "70000" }, "PORT"],
      [{ PORT: "-1" }, "PORT"],
      [{ DATABASE_URL: "not a url" }, "DATABASE_URL"],
      [{ RATE_LIMIT_MESSAGES: "0" }, "RATE_LIMIT_MESSAGES"],
      [{ RATE_LIMIT_MESSAGES: "lots" }, "RATE_LIMIT_MESSAGES"],
      [{ RATE_LIMIT_MESSAGES: "2.5" }, "RATE_LIMIT_MESSAGES"],
    ];
    for (const [env, variable] of cases) {
      expect(configError(env), JSON.stringify(env)).to.contain(variable);
    }
  });

  it("when DATABASE_URL is not a PostgreSQL URL, loadConfig fails naming DATABASE_URL", () => {
    for (const url of [
      "localhost:5432/windi",
      "mysql://127.0.0.1:3306/windi",
    ]) {
      expect(configError({ DATABASE_URL: url }), url).to.contain(
        "DATABASE_URL",
      );
    }
  });

  it("when the settings are good, loadConfig answers them with defaults for the rest", () => {
    const config = loadConfig({
      PORT: "4000",
      DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/windi",
      RATE_LIMIT_MESSAGES: "5",
      REDIS_URL: "",
    });
    expect(config).to.include({
      PORT: 4000,
      DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/windi",
      RATE_LIMIT_MESSAGES: 5,
      NODE_ENV: "development",
    });
    expect(config.REDIS_URL).to.equal(undefined);
  });

  it("when NODE_ENV is production and JWT_SECRET is missing or the default, loadConfig fails naming JWT_SECRET", () => {
    expect(configError({ NODE_ENV: "production" })).to.contain("JWT_SECRET");
    expect(configError({ NODE_ENV: "production", JWT_SECRET: "" })).to.contain(
      "JWT_SECRET",
    );
    const defaultSecret = loadConfig({}).JWT_SECRET;
    expect(
      configError({ NODE_ENV: "production", JWT_SECRET: defaultSecret }),
    ).to.contain("JWT_SECRET");
    const config = loadConfig({
      NODE_ENV: "production",
      JWT_SECRET: "a-real-secret-of-32-characters!!",
    });
    expect(config.JWT_SECRET).to.equal("a-real-secret-of-32-characters!!");
  });

  it("when the node is started with PORT=abc, it exits non-zero naming PORT", async () => {
    expect(existsSync(MAIN), "build first: npx tsc -b services/chat").to.equal(
      true,
    );
    for (const [env, variable] of [
      [{ PORT: "abc" }, "PORT"],
      [{ NODE_ENV: "production", PORT: "0" }, "JWT_SECRET"],
    ] as const) {
      const node = new NodeProcess(env);
      const exit = await Promise.race([
        node.exited,
        delay(10_000).then(() => undefined),
      ]);
      if (!exit) node.child.kill("SIGKILL");
      expect(exit, "still running").not.to.equal(undefined);
      expect(exit!.code, node.output).to.be.a("number").and.not.equal(0);
      expect(node.output).to.contain(variable);
      expect(node.output).not.to.match(/\n\s+at /);
    }
  });
});

describe("the files that pass settings to the node", () => {
  const read = (file: string) =>
    readFileSync(fileURLToPath(new URL(`../${file}`, import.meta.url)), "utf8");

  it("when .env.example is read, it lists every setting of the node, and only compose's own besides", () => {
    const listed = [...read(".env.example").matchAll(/^([A-Z_]+)=/gm)].map(
      (m) => m[1],
    );
    expect(listed).to.include.members(SETTING_NAMES);
    const others = listed.filter((name) => !SETTING_NAMES.includes(name!));
    expect(others).to.deep.equal(["POSTGRES_PASSWORD"]);
  });

  it("when docker-compose.yml is read, every variable it gives the nodes is a setting", () => {
    const chat = /\n {2}chat:\n([\s\S]*?)\n {2}[a-z]+:\n/.exec(
      read("docker-compose.yml"),
    )?.[1];
    const given = [...(chat ?? "").matchAll(/^ {6}([A-Z_]+):/gm)].map(
      (m) => m[1],
    );
    expect(given.length).to.be.above(5);
    expect(SETTING_NAMES).to.include.members(given);
  });
});

describe("embedded mode, end to end", () => {
  let dir: string;
  let port: number;
  let url: string;
  let node: NodeProcess | undefined;
  const devices = new Devices();

  before(async () => {
    expect(existsSync(MAIN), "build first: npx tsc -b services/chat").to.equal(
      true,
    );
    dir = await mkdtemp(path.join(os.tmpdir(), "windi-embedded-"));
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    devices.closeAll();
    if (node?.running) {
      node.child.kill("SIGKILL");
      await node.exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  function start(): NodeProcess {
    node = new NodeProcess({
      HOST: "127.0.0.1",
      PORT: String(port),
      PGLITE_DIR: path.join(dir, "pglite"),
      PASSWORD_HASH_COST: "10",
      LOG_LEVEL: "info",
      NODE_ID: "embedded-node",
    });
    return node;
  }

  let alice: TestUser;
  let bob: TestUser;
  let chatId: number;

  it("when started without DATABASE_URL, it runs on PGlite: people register, chat over sockets, read history, and it stops on SIGTERM with 0 within 10 s", async function () {
    this.timeout(45_000);
    const first = start();
    await first.waitHealthy(url);
    const logs = first.logs();
    expect(
      logs.some((l) => l.database === "embedded"),
      first.output,
    ).to.equal(true);
    expect(first.output).to.contain("embedded mode");
    expect(logs.some((l) => l.message === "migrations applied")).to.equal(true);
    expect((await new Api(url).get("/readyz")).status).to.equal(200);

    [alice, bob] = (await newUsers(url, 2, "emb")) as [TestUser, TestUser];
    const opened = await alice.api.post("/chats", {
      type: "private",
      user_id: bob.id,
    });
    expect(opened.status).to.equal(201);
    chatId = opened.body.id;
    const [a1, b1] = await Promise.all([
      devices.connect(url, alice.token),
      devices.connect(url, bob.token),
    ]);

    const hello = await a1.ask("message:send", {
      chat_id: chatId,
      text: "hello from PGlite",
      client_id: "e-1",
    });
    expect(hello).to.deep.include({ ok: true, duplicate: false });
    const [heard] = await b1.waitFor("message:new");
    expect(heard).to.deep.equal(hello.message);
    const reply = await b1.ask("message:send", {
      chat_id: chatId,
      text: "hello back",
    });
    expect(reply.message.seq).to.equal(2);
    await a1.waitFor("message:new", (m) => m.seq === 2);
    const again = await a1.ask("message:send", {
      chat_id: chatId,
      text: "hello from PGlite",
      client_id: "e-1",
    });
    expect(again).to.deep.include({ ok: true, duplicate: true });
    expect(
      await a1.ask("message:read", { chat_id: chatId, seq: 2 }),
    ).to.deep.equal({ ok: true, last_read_seq: 2 });

    const history = await bob.api.get(`/history/${chatId}`);
    expect(history.status).to.equal(200);
    expect(history.body.map((m: { text: string }) => m.text)).to.deep.equal([
      "hello from PGlite",
      "hello back",
    ]);
    expect(history.body[0]).to.deep.equal({ ...hello.message, is_read: true });
    expect(history.body[1].is_read).to.equal(true);
    await settle();
    expect(b1.received("message:new")).to.have.length(2);

    // Membership changes run in a transaction on PGlite's one connection.
    const [carol] = (await newUsers(url, 1, "emb")) as [TestUser];
    const group = await alice.api.post("/chats", {
      type: "group",
      name: "embedded group",
      member_ids: [bob.id],
    });
    const groupId = group.body.id as number;
    const add = await alice.api.post(`/chats/${groupId}/members`, {
      user_id: carol.id,
    });
    expect(add.status, JSON.stringify(add.body)).to.equal(200);
    const leave = await alice.api.delete(
      `/chats/${groupId}/members/${alice.id}`,
    );
    expect(leave.status).to.equal(204);
    const after = await bob.api.get(`/chats/${groupId}`);
    expect(
      after.body.members.map((m: { user_id: number; role: string }) => [
        m.user_id,
        m.role,
      ]),
    ).to.deep.equal([
      [bob.id, "owner"],
      [carol.id, "member"],
    ]);

    const stopped = await first.terminate();
    expect(stopped.code, first.output).to.equal(0);
    expect(stopped.elapsedMs).to.be.below(10_000);
    expect(first.output).not.to.contain(PASSWORD);
    devices.closeAll();
  });

  it("when restarted on the same folder, the people, chat and messages are still there", async function () {
    this.timeout(45_000);
    expect(chatId, "the first run must have passed").to.be.a("number");
    const second = start();
    await second.waitHealthy(url);
    expect(
      second.logs().some((l) => l.message === "migrations applied"),
    ).to.equal(false);

    const login = await new Api(url).post("/token", {
      username: alice.email,
      password: PASSWORD,
    });
    expect(login.status).to.equal(200);
    const me = new Api(url, login.body.access_token);
    expect((await me.get("/users/me")).body.id).to.equal(alice.id);
    const chats = await me.get("/chats");
    expect(chats.body.map((c: { id: number }) => c.id)).to.deep.equal([chatId]);
    expect(chats.body[0].last_message.text).to.equal("hello back");
    const history = await me.get(`/history/${chatId}`);
    expect(history.body.map((m: { seq: number }) => m.seq)).to.deep.equal([
      1, 2,
    ]);
    const next = await me.post(`/chats/${chatId}/messages`, {
      text: "still here",
    });
    expect(next.status).to.equal(201);
    expect(next.body.seq).to.equal(3);

    const stopped = await second.terminate();
    expect(stopped.code, second.output).to.equal(0);
    expect(stopped.elapsedMs).to.be.below(10_000);
  });
});

describe("logs of a node process", () => {
  const SECRET_PASSWORD = "hunter2-never-in-logs";
  const FORM = { "content-type": "application/x-www-form-urlencoded" };
  let db: TestDatabase;
  let node: NodeProcess | undefined;
  let url: string;

  before(async () => {
    expect(existsSync(MAIN), "build first: npx tsc -b services/chat").to.equal(
      true,
    );
    db = await createTestDatabase();
    url = `http://127.0.0.1:${await freePort()}`;
  });
  after(async () => {
    if (node?.running) {
      node.child.kill("SIGKILL");
      await node.exited;
    }
    await db?.drop();
  });

  /** A form of `count` fields, the password among them. */
  function crowdedForm(fields: Record<string, string>, count: number) {
    const body = new URLSearchParams(fields);
    for (let i = body.size; i < count; i++) body.append(`f${i}`, "x");
    return body.toString();
  }

  it("when requests that carry a password fail or succeed at debug level, stdout holds no password and every line is JSON with level, timestamp and node", async function () {
    this.timeout(30_000);
    node = new NodeProcess({
      HOST: "127.0.0.1",
      PORT: new URL(url).port,
      DATABASE_URL: db.url,
      MIGRATE_ON_START: "false",
      PASSWORD_HASH_COST: "10",
      LOG_LEVEL: "debug",
      NODE_ID: "log-node",
    });
    await node.waitHealthy(url);
    const api = new Api(url);
    const name = `log_${Date.now()}`;
    const person = {
      name,
      email: `${name}@example.test`,
      password: SECRET_PASSWORD,
    };
    const login = { username: name, password: SECRET_PASSWORD };

    const failures = [
      await api.request<any>("POST", "/token", crowdedForm(login, 1001), FORM),
      await api.request<any>("POST", "/users", crowdedForm(person, 1001), FORM),
      await api.request<any>(
        "POST",
        "/users",
        new URLSearchParams({ ...person, email: "not-an-email" }).toString(),
        FORM,
      ),
      await api.request<any>("POST", "/users", JSON.stringify(person), {
        "content-type": "application/json; charset=latin1",
      }),
      await api.request<any>("POST", "/users", JSON.stringify(person), {
        "content-type": "application/json",
        "content-encoding": "gzip",
      }),
      await api.request<any>("POST", "/token", `${JSON.stringify(login)}}`, {
        "content-type": "application/json",
      }),
    ];
    const registered = await api.request<any>(
      "POST",
      "/users",
      new URLSearchParams(person).toString(),
      FORM,
    );
    expect(registered.status, JSON.stringify(registered.body)).to.equal(201);
    const loggedIn = await api.request<any>(
      "POST",
      "/token",
      new URLSearchParams(login).toString(),
      FORM,
    );
    expect(loggedIn.status).to.equal(200);
    const wrong = await api.post("/token", { ...login, password: "nope" });
    expect(wrong.status).to.equal(401);
    const token = loggedIn.body.access_token as string;
    expect((await api.as(token).get("/users/me")).status).to.equal(200);

    const stopped = await node.terminate();
    expect(stopped.code, node.output).to.equal(0);
    expect(node.output).not.to.contain(SECRET_PASSWORD);
    expect(node.output).not.to.contain(token);
    const lines = node.stdout.split("\n").filter((line) => line.trim());
    expect(lines.length).to.be.above(5);
    for (const line of lines) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        expect.fail(`not a JSON log line: ${line}`);
      }
      expect(entry, line).to.include.keys("level", "timestamp", "node");
      expect(entry.node, line).to.equal("log-node");
    }
    expect(lines.some((line) => line.includes('"level":"debug"'))).to.equal(
      true,
    );
    for (const reply of failures) {
      expect(reply.status, JSON.stringify(reply.body)).to.be.within(400, 499);
    }
  });
});
