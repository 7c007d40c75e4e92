/**
 * A WinDI Chat cluster as plain processes on loopback, for tests that cross
 * nodes: its own redis-server, N chat nodes and nginx with the repository's
 * nginx.conf pointed at them. It is the layout of docker-compose.yml without
 * Docker; PostgreSQL comes from the caller (see support/db.ts).
 *
 * @example
 *   const db = await createTestDatabase();
 *   const cluster = await startCluster({ nodes: 3, databaseUrl: db.url });
 *   const socket = io(cluster.nginxUrl, { agent: cluster.agentOn(1) });
 *   ...
 *   await cluster.stop();
 *   await db.drop();
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import {
  chmod,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  writeFile,
} from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const NODE_MAIN = path.join(REPO_ROOT, "services/chat/dist/main.js");
const NGINX_CONF = path.join(REPO_ROOT, "nginx.conf");
const NGINX_BIN = "/usr/sbin/nginx";
const REDIS_BIN = "/usr/bin/redis-server";

/** Secret the nodes sign tokens with, for tests that mint their own. */
export const CLUSTER_JWT_SECRET = "cluster-test-secret-0123456789";

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 12_000;
const PROBE_TIMEOUT_MS = 1_000;
const POLL_INTERVAL_MS = 100;
const OUTPUT_LIMIT = 64 * 1024;

/** How a process ended. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** How a process ended after a signal, and how long it took to. */
export interface StopResult extends ExitStatus {
  elapsedMs: number;
}

/** Children still alive, killed if the test process exits without stop(). */
const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
process.once("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

/** The last bytes a process wrote, kept for failure messages. */
class OutputTail {
  private chunks: string[] = [];
  private size = 0;

  append(chunk: string): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > OUTPUT_LIMIT && this.chunks.length > 1) {
      this.size -= this.chunks.shift()?.length ?? 0;
    }
  }

  toString(): string {
    return this.chunks.join("");
  }
}

/**
 * A child process with its output captured and its exit awaited. Its stdout
 * goes to `stdoutFile` if one is given: a program that opens /dev/stdout
 * (nginx's access log) cannot open the socket pair of a captured stdout.
 */
export class ManagedProcess {
  readonly exited: Promise<ExitStatus>;
  private readonly child: ChildProcess;
  private readonly output = new OutputTail();
  private status: ExitStatus | undefined;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    private readonly stdoutFile?: string,
  ) {
    const stdout = stdoutFile ? openSync(stdoutFile, "a") : "pipe";
    this.child = spawn(command, args, {
      cwd: REPO_ROOT,
      env,
      stdio: ["ignore", stdout, "pipe"],
    });
    if (typeof stdout === "number") closeSync(stdout);
    liveChildren.add(this.child);
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => this.output.append(chunk));
    }
    this.exited = new Promise((resolve) => {
      const settle = (status: ExitStatus) => {
        liveChildren.delete(this.child);
        this.status ??= status;
        resolve(this.status);
      };
      this.child.once("error", (error) => {
        this.output.append(`cannot run ${command}: ${error.message}\n`);
        settle({ code: null, signal: null });
      });
      this.child.once("exit", (code, signal) => settle({ code, signal }));
    });
  }

  get hasExited(): boolean {
    return this.status !== undefined;
  }

  /** What the process wrote to stdout and stderr (the last 64 KiB each). */
  tail(): string {
    const captured = this.output.toString();
    if (!this.stdoutFile || !existsSync(this.stdoutFile)) return captured;
    const written = readFileSync(this.stdoutFile, "utf8");
    return written.slice(-OUTPUT_LIMIT) + captured;
  }

  /**
   * Sends `signal` and waits for the exit; after `timeoutMs` the process is
   * killed with SIGKILL and the call fails, naming the process.
   */
  async stop(
    signal: NodeJS.Signals = "SIGTERM",
    timeoutMs = STOP_TIMEOUT_MS,
  ): Promise<StopResult> {
    const started = Date.now();
    if (this.status) return { ...this.status, elapsedMs: 0 };
    this.child.kill(signal);
    const status = await Promise.race([this.exited, delay(timeoutMs)]);
    if (status) return { ...status, elapsedMs: Date.now() - started };
    this.child.kill("SIGKILL");
    await this.exited;
    throw new Error(
      `${this.name} did not exit within ${timeoutMs} ms of ${signal}` +
        describeOutput(this),
    );
  }
}

function describeOutput(child: ManagedProcess): string {
  const tail = child.tail().trimEnd();
  return tail ? `\n--- ${child.name} output ---\n${tail}` : "";
}

function describeExit(status: ExitStatus): string {
  return status.signal ? `signal ${status.signal}` : `code ${status.code}`;
}

/**
 * Polls `probe` until it resolves. A rejection is a "not yet" whose message
 * ends up in the timeout error; the exit of `watched` fails the wait at once.
 */
export async function waitUntil(
  what: string,
  probe: () => Promise<unknown>,
  options: { timeoutMs?: number; watched?: ManagedProcess } = {},
): Promise<void> {
  const { timeoutMs = START_TIMEOUT_MS, watched } = options;
  const deadline = Date.now() + timeoutMs;
  let lastProblem = "no attempt finished";
  while (Date.now() < deadline) {
    if (watched?.hasExited) {
      const status = await watched.exited;
      throw new Error(
        `${watched.name} exited (${describeExit(status)}) ` +
          `while waiting for ${what}` +
          describeOutput(watched),
      );
    }
    try {
      await probe();
      return;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    await delay(POLL_INTERVAL_MS);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what} ` +
      `(last: ${lastProblem})` +
      (watched ? describeOutput(watched) : ""),
  );
}

/** An answer of {@link httpRequest}, body read in full. */
export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as JSON, with its content type. */
  json?: unknown;
  body?: string;
  /** Connection pool to go through, e.g. {@link agentFor}. */
  agent?: http.Agent;
  /** Local address of a one-off connection (ignored with `agent`). */
  localAddress?: string;
  timeoutMs?: number;
}

/**
 * A plain HTTP request that can leave from a chosen loopback address (which
 * fetch cannot), failing after `timeoutMs` (5 s by default).
 */
export function httpRequest(
  url: string,
  options: HttpOptions = {},
): Promise<HttpResponse> {
  const { timeoutMs = 5_000 } = options;
  const headers = { ...options.headers };
  let body = options.body;
  if (options.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  return new Promise((resolve, reject) => {
    const request = http.request(url, {
      method: options.method ?? "GET",
      headers,
      agent: options.agent ?? false,
      ...(options.agent ? {} : { localAddress: options.localAddress }),
    });
    const timer = setTimeout(() => {
      request.destroy(new Error(`no answer from ${url} in ${timeoutMs} ms`));
    }, timeoutMs);
    request.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.once("response", (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      response.once("error", reject);
      response.once("end", () => {
        clearTimeout(timer);
        const status = response.statusCode ?? 0;
        resolve({ status, headers: response.headers, body: text });
      });
    });
    request.end(body);
  });
}

async function expectOk(url: string): Promise<void> {
  const response = await httpRequest(url, { timeoutMs: PROBE_TIMEOUT_MS });
  if (response.status !== 200) {
    throw new Error(`${url} answered ${response.status} ${response.body}`);
  }
}

const agents = new Map<string, http.Agent>();

/**
 * A keep-alive agent whose connections leave from `localAddress` (any of
 * 127.0.0.1-127.0.0.254). nginx hashes clients by address, so clients on
 * distinct addresses can land on distinct nodes. Use it as socket.io-client's
 * `agent` option (both transports honour it) or {@link httpRequest}'s.
 * One agent per address, shared; {@link destroyAgents} closes them all.
 */
export function agentFor(localAddress: string): http.Agent {
  let agent = agents.get(localAddress);
  if (!agent) {
    agent = new http.Agent({ keepAlive: true, localAddress });
    agents.set(localAddress, agent);
  }
  return agent;
}

/** Closes every agent made by {@link agentFor} and its connections. */
export function destroyAgents(): void {
  for (const agent of agents.values()) agent.destroy();
  agents.clear();
}

const handedOutPorts = new Set<number>();

/**
 * A TCP port free on 127.0.0.1 at the time of the call, and not handed out
 * before by this process (the kernel may offer a just-closed port again).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    if (!handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
}

function requireBinary(file: string, install: string): void {
  if (!existsSync(file)) {
    throw new Error(
      `${file} not found: the cluster tests need it; ` +
        `install it with \`apt-get install ${install}\``,
    );
  }
}

/** The environment every child starts from: nothing from the caller's. */
function baseEnv(): NodeJS.ProcessEnv {
  const { PATH, HOME, LANG, TMPDIR } = process.env;
  return { PATH, HOME, LANG, TMPDIR };
}

async function pingRedis(port: number): Promise<void> {
  const socket = net.connect({ host: "127.0.0.1", port });
  socket.setEncoding("utf8");
  socket.setTimeout(PROBE_TIMEOUT_MS);
  try {
    const reply = await new Promise<string>((resolve, reject) => {
      let text = "";
      socket.once("error", reject);
      socket.once("timeout", () => reject(new Error("no answer to PING")));
      socket.once("connect", () => socket.write("PING\r\n"));
      socket.on("data", (chunk: string) => {
        text += chunk;
        if (text.includes("\r\n")) resolve(text.trim());
      });
    });
    if (reply !== "+PONG") throw new Error(`redis answered ${reply}`);
  } finally {
    socket.destroy();
  }
}

/**
 * redis-server on 127.0.0.1:`port`, without persistence, working in `dir`;
 * resolves once it answers PING.
 */
export async function startRedisServer(
  port: number,
  dir: string,
): Promise<ManagedProcess> {
  requireBinary(REDIS_BIN, "redis-server");
  const args = ["--port", String(port), "--bind", "127.0.0.1"];
  args.push("--save", "", "--appendonly", "no", "--dir", dir);
  args.push("--loglevel", "warning");
  const redis = new ManagedProcess(`redis:${port}`, REDIS_BIN, args, baseEnv());
  await waitUntil(`redis on port ${port}`, () => pingRedis(port), {
    watched: redis,
  });
  return redis;
}

/**
 * The repository's nginx.conf with the compose service `chat:3000` replaced
 * by loopback backends and the listen port by `port` on 127.0.0.1. Fails if
 * nginx.conf no longer has exactly one of each, rather than test a guess.
 */
export function loopbackNginxConfig(
  source: string,
  port: number,
  backendPorts: number[],
): string {
  const upstream = /^([ \t]*)server[ \t]+chat:3000\b([^;]*);/gm;
  const listen = /^([ \t]*)listen[ \t]+8080[ \t]*;/gm;
  for (const [pattern, what] of [
    [upstream, "`server chat:3000 ...;`"],
    [listen, "`listen 8080;`"],
  ] as const) {
    const count = source.match(pattern)?.length ?? 0;
    if (count !== 1) {
      throw new Error(`nginx.conf must hold one ${what}, found ${count}`);
    }
  }
  return source
    .replace(upstream, (_line, indent: string, params: string) =>
      backendPorts
        .map((backend) => `${indent}server 127.0.0.1:${backend}${params};`)
        .join("\n"),
    )
    .replace(listen, (_line, indent: string) => {
      return `${indent}listen 127.0.0.1:${port};`;
    });
}

/**
 * Debian's nginx running the repository's nginx.conf (see
 * {@link loopbackNginxConfig}) from the prefix directory `dir`; resolves
 * once nginx accepts connections on `port`. Run as root, nginx's workers
 * are "nobody": every parent of `dir` must let them through.
 */
export async function startNginx(options: {
  port: number;
  backendPorts: number[];
  dir: string;
}): Promise<ManagedProcess> {
  requireBinary(NGINX_BIN, "nginx-light");
  const { port, backendPorts, dir } = options;
  const source = await readFile(NGINX_CONF, "utf8");
  const conf = path.join(dir, "nginx.conf");
  await writeFile(conf, loopbackNginxConfig(source, port, backendPorts));
  await chmod(dir, 0o755);
  const args = ["-p", `${dir}/`, "-c", conf, "-e", "stderr"];
  const accessLog = path.join(dir, "access.log");
  const nginx = new ManagedProcess(
    `nginx:${port}`,
    NGINX_BIN,
    args,
    baseEnv(),
    accessLog,
  );
  await waitUntil(`nginx on port ${port}`, () => connectOnce(port), {
    watched: nginx,
  });
  return nginx;
}

async function connectOnce(port: number): Promise<void> {
  const socket = net.connect({ host: "127.0.0.1", port });
  try {
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
  } finally {
    socket.destroy();
  }
}

export interface ClusterOptions {
  /** Number of chat nodes, named node-0 ... node-(N-1). */
  nodes: number;
  /** A migrated PostgreSQL database; the nodes do not migrate it. */
  databaseUrl: string;
  /** Settings for every node, over the harness's (see nodeEnv). */
  env?: Record<string, string>;
}

/** A running cluster; every method waits with a timeout. */
export interface Cluster {
  /** http://127.0.0.1:port of each node, by index. */
  readonly nodeUrls: readonly string[];
  /** NODE_ID of each node, by index: node-0, node-1, ... */
  readonly nodeIds: readonly string[];
  /** nginx in front of the nodes, sticky by client address. */
  readonly nginxUrl: string;
  readonly redisUrl: string;
  /**
   * The `k`-th loopback address that nginx sends to node `i`, found by
   * asking nginx while every node was up. Use with {@link agentFor}.
   */
  addressOn(i: number, k?: number): string;
  /** `agentFor(addressOn(i, k))`: a client through nginx lands on node i. */
  agentOn(i: number, k?: number): http.Agent;
  /** Signals node `i` and waits for its exit (SIGKILL after 12 s). */
  killNode(i: number, signal?: NodeJS.Signals): Promise<StopResult>;
  /**
   * Starts an exited node again on its port; resolves once it is ready and
   * nginx sends its addresses to it again (after nginx's fail_timeout).
   */
  restartNode(i: number): Promise<void>;
  /** Whether node `i` is running (not killed, not crashed). */
  isRunning(i: number): boolean;
  /** Stops the cluster's redis-server (the system Redis is not touched). */
  stopRedis(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the cluster's redis-server again on the same port, empty. */
  startRedis(): Promise<void>;
  /** Polls `url` + `path` (default /healthz) until it answers 200. */
  waitReady(url: string, options?: WaitReadyOptions): Promise<void>;
  /** Output of every process, for a failing test's message. */
  logs(): string;
  /** Stops every process, closes the agents and removes the temp files. */
  stop(): Promise<void>;
}

export interface WaitReadyOptions {
  path?: string;
  timeoutMs?: number;
}

/** What the harness sets for each node, under the caller's `env`. */
function nodeEnv(
  index: number,
  port: number,
  redisUrl: string,
  options: ClusterOptions,
): NodeJS.ProcessEnv {
  return {
    ...baseEnv(),
    NODE_ENV: "test",
    HOST: "127.0.0.1",
    PORT: String(port),
    NODE_ID: `node-${index}`,
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: redisUrl,
    JWT_SECRET: CLUSTER_JWT_SECRET,
    MIGRATE_ON_START: "false",
    LOG_LEVEL: "warn",
    // The cheapest hash the node accepts: registrations stay fast.
    PASSWORD_HASH_COST: "10",
    ...options.env,
  };
}

/** One chat node: a fixed port and environment, started and restarted. */
class ChatNode {
  private current: ManagedProcess | undefined;
  /** Output of the node's earlier runs, before a restart. */
  private earlier = "";

  constructor(
    readonly id: string,
    readonly port: number,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.current && !this.current.hasExited) {
      throw new Error(`${this.id} is still running`);
    }
    if (this.current) this.earlier += describeOutput(this.current);
    const node = new ManagedProcess(
      this.id,
      process.execPath,
      [NODE_MAIN],
      this.env,
    );
    this.current = node;
    for (const probe of ["/healthz", "/readyz"]) {
      const url = this.url + probe;
      await waitUntil(`${this.id} ${probe}`, () => expectOk(url), {
        watched: node,
      });
    }
  }

  async stop(signal: NodeJS.Signals): Promise<StopResult> {
    if (!this.current) throw new Error(`${this.id} was never started`);
    return this.current.stop(signal);
  }

  get running(): boolean {
    return this.current !== undefined && !this.current.hasExited;
  }

  output(): string {
    return this.earlier + (this.current ? describeOutput(this.current) : "");
  }
}

/** Every loopback address a client can bind to, 127.0.0.1-254. */
const LOOPBACK_ADDRESSES = Array.from(
  { length: 254 },
  (_, i) => `127.0.0.${i + 1}`,
);

/** Which node (by X-Node-Id) nginx sends `localAddress` to. */
async function nodeBehindNginx(
  nginxUrl: string,
  localAddress: string,
): Promise<string> {
  const response = await httpRequest(`${nginxUrl}/healthz`, {
    localAddress,
    timeoutMs: 5_000,
  });
  const nodeId = response.headers["x-node-id"];
  if (response.status !== 200 || typeof nodeId !== "string") {
    throw new Error(
      `nginx answered ${localAddress} with ${response.status}, ` +
        `X-Node-Id ${String(nodeId)}`,
    );
  }
  return nodeId;
}

/** The processes of one cluster, behind the {@link Cluster} interface. */
class LoopbackCluster implements Cluster {
  readonly nodeUrls: readonly string[];
  readonly nodeIds: readonly string[];
  readonly nginxUrl: string;
  readonly redisUrl: string;
  private redis: ManagedProcess | undefined;
  private nginx: ManagedProcess | undefined;
  private addresses: string[][] = [];

  constructor(
    private readonly dir: string,
    private readonly ports: { redis: number; nginx: number },
    private readonly nodes: readonly ChatNode[],
  ) {
    this.nodeUrls = nodes.map((node) => node.url);
    this.nodeIds = nodes.map((node) => node.id);
    this.nginxUrl = `http://127.0.0.1:${ports.nginx}`;
    this.redisUrl = `redis://127.0.0.1:${ports.redis}`;
  }

  private get redisDir(): string {
    return path.join(this.dir, "redis");
  }

  /** Redis first (the nodes need it to be ready), nginx last. */
  async start(): Promise<void> {
    const nginxDir = path.join(this.dir, "nginx");
    await Promise.all([mkdir(this.redisDir), mkdir(nginxDir)]);
    await this.startRedis();
    await Promise.all(this.nodes.map((node) => node.start()));
    this.nginx = await startNginx({
      port: this.ports.nginx,
      backendPorts: this.nodes.map((node) => node.port),
      dir: nginxDir,
    });
    await this.waitReady(this.nginxUrl);
    await this.mapAddresses();
  }

  private async mapAddresses(): Promise<void> {
    this.addresses = this.nodes.map(() => []);
    for (const address of LOOPBACK_ADDRESSES) {
      const nodeId = await nodeBehindNginx(this.nginxUrl, address);
      const list = this.addresses[this.nodeIds.indexOf(nodeId)];
      if (!list) throw new Error(`nginx answered from unknown ${nodeId}`);
      list.push(address);
    }
    const idle = this.addresses.findIndex((list) => list.length === 0);
    if (idle >= 0) {
      throw new Error(`nginx sent no address to ${this.nodeIds[idle]}`);
    }
  }

  addressOn(i: number, k = 0): string {
    const address = this.addresses[i]?.[k];
    if (!address) {
      throw new Error(`nginx sends fewer than ${k + 1} addresses to node ${i}`);
    }
    return address;
  }

  agentOn(i: number, k = 0): http.Agent {
    return agentFor(this.addressOn(i, k));
  }

  killNode(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<StopResult> {
    return this.nodeAt(i).stop(signal);
  }

  async restartNode(i: number): Promise<void> {
    const node = this.nodeAt(i);
    await node.start();
    const address = this.addressOn(i);
    await waitUntil(
      `nginx to send ${address} to ${node.id} again`,
      async () => {
        const nodeId = await nodeBehindNginx(this.nginxUrl, address);
        if (nodeId !== node.id) throw new Error(`it went to ${nodeId}`);
      },
      { timeoutMs: 15_000 },
    );
  }

  isRunning(i: number): boolean {
    return this.nodeAt(i).running;
  }

  private nodeAt(i: number): ChatNode {
    const node = this.nodes[i];
    if (!node) throw new Error(`no node ${i} among ${this.nodes.length}`);
    return node;
  }

  async stopRedis(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.redis?.stop(signal);
  }

  async startRedis(): Promise<void> {
    if (this.redis && !this.redis.hasExited) {
      throw new Error("the cluster's redis-server is still running");
    }
    this.redis = await startRedisServer(this.ports.redis, this.redisDir);
  }

  waitReady(url: string, options: WaitReadyOptions = {}): Promise<void> {
    const { path: probe = "/healthz", timeoutMs } = options;
    return waitUntil(`${url}${probe}`, () => expectOk(url + probe), {
      timeoutMs,
    });
  }

  logs(): string {
    const nodes = this.nodes.map((node) => node.output());
    const others = [this.redis, this.nginx].map((p) =>
      p ? describeOutput(p) : "",
    );
    return [...nodes, ...others].join("");
  }

  /**
   * nginx first, so no client reaches a stopping node, then the nodes (which
   * drain), Redis last. Cleans up even if a process had to be killed, then
   * reports that.
   */
  async stop(): Promise<void> {
    const end = async (child: ManagedProcess | undefined) => {
      await child?.stop("SIGTERM");
    };
    const stages = [
      () => [end(this.nginx)],
      () => this.nodes.filter((n) => n.running).map((n) => n.stop("SIGTERM")),
      () => [end(this.redis)],
    ];
    const failures: unknown[] = [];
    for (const stage of stages) {
      for (const result of await Promise.allSettled(stage())) {
        if (result.status === "rejected") failures.push(result.reason);
      }
    }
    destroyAgents();
    await rm(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
    if (failures.length > 0) throw failures[0];
  }
}

/**
 * Starts redis-server, `nodes` chat nodes and nginx on loopback, each on a
 * free port, and resolves when every node is ready (/healthz and /readyz)
 * and nginx answers. If anything fails to start, all of it is stopped.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  requireBinary(NGINX_BIN, "nginx-light");
  requireBinary(REDIS_BIN, "redis-server");
  if (!existsSync(NODE_MAIN)) {
    throw new Error(`${NODE_MAIN} not found: build it with \`npm ci\``);
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "windi-cluster-"));
  liveDirs.add(dir);
  // nginx workers (not root) write request bodies into a directory below.
  await chmod(dir, 0o755);
  const ports = { redis: await freePort(), nginx: await freePort() };
  const redisUrl = `redis://127.0.0.1:${ports.redis}`;
  const nodes: ChatNode[] = [];
  for (let i = 0; i < options.nodes; i++) {
    const port = await freePort();
    const env = nodeEnv(i, port, redisUrl, options);
    nodes.push(new ChatNode(`node-${i}`, port, env));
  }
  const cluster = new LoopbackCluster(dir, ports, nodes);
  try {
    await cluster.start();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
