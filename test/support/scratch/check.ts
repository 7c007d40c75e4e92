import { io } from "socket.io-client";
import { mkdtemp, rm, readdir, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  ManagedProcess, agentFor, destroyAgents, freePort, httpRequest,
  startNginx, startRedisServer, waitUntil,
} from "../cluster.js";

const dir = await mkdtemp(path.join(os.tmpdir(), "scratch-"));
if (process.env.FIX) await (await import("node:fs/promises")).chmod(dir, 0o755);
const log = (...a: unknown[]) => console.log(...a);

// redis start / stop / restart on the same port
const redisPort = await freePort();
await (await import("node:fs/promises")).mkdir(path.join(dir, "r"));
let redis = await startRedisServer(redisPort, path.join(dir, "r"));
log("redis up", redisPort);
const stopped = await redis.stop("SIGKILL");
log("redis stopped", stopped);
redis = await startRedisServer(redisPort, path.join(dir, "r"));
log("redis restarted on same port");

// two backends
const ports = [await freePort(), await freePort()];
const backends = ports.map((p, i) => new ManagedProcess(`b${i}`, process.execPath, [path.resolve("test/support/scratch/backend.mjs"), String(p), `b${i}`], { PATH: process.env.PATH }));
for (const [i, p] of ports.entries()) {
  await waitUntil(`b${i}`, () => httpRequest(`http://127.0.0.1:${p}/x`), { watched: backends[i]! });
}
const nginxPort = await freePort();
const ndir = path.join(dir, "n");
await (await import("node:fs/promises")).mkdir(ndir);
const nginx = await startNginx({ port: nginxPort, backendPorts: ports, dir: ndir });
const url = `http://127.0.0.1:${nginxPort}`;
log("nginx up", url);

// stickiness: 20 requests from one address -> one backend, keepalive agent and one-off
for (const addr of ["127.0.0.2", "127.0.0.3", "127.0.0.9"]) {
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const r = await httpRequest(`${url}/poll?i=${i}`, i % 2 ? { agent: agentFor(addr) } : { localAddress: addr });
    seen.add(String(r.headers["x-node-id"]));
    if (i === 0) log(addr, r.body);
  }
  log(addr, "->", [...seen]);
}
// spread
const count: Record<string, number> = {};
for (let i = 1; i <= 254; i++) {
  const r = await httpRequest(`${url}/healthz`, { localAddress: `127.0.0.${i}` });
  const id = String(r.headers["x-node-id"]);
  count[id] = (count[id] ?? 0) + 1;
}
log("spread over 254 addresses", count);

// body limits
const big = "x".repeat(100 * 1024);
const r100 = await httpRequest(`${url}/body`, { method: "POST", body: big });
log("100 KiB POST:", r100.status, r100.body);
const r200 = await httpRequest(`${url}/body`, { method: "POST", body: "x".repeat(200 * 1024) });
log("200 KiB POST:", r200.status, r200.body.slice(0, 80).replace(/\n/g, " "));

// socket.io through nginx: polling only, and websocket, from two addresses
for (const transports of [["polling"], ["websocket"], ["polling", "websocket"]]) {
  for (const addr of ["127.0.0.2", "127.0.0.3"]) {
    const socket = io(url, { transports, agent: agentFor(addr) as never, reconnection: false, timeout: 5000 });
    await new Promise<void>((res, rej) => { socket.once("connect", () => res()); socket.once("connect_error", rej); });
    // wait for an upgrade if any and do several round trips
    await new Promise((r) => setTimeout(r, 300));
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await socket.timeout(3000).emitWithAck("whoami"));
    log(transports.join("+"), addr, JSON.stringify(answers.map((a) => `${a.id}/${a.transport}`)));
    socket.close();
  }
}

// kill backend 0: clients of it through nginx land on b1
const victimAddr = "127.0.0.2";
await backends[0]!.stop("SIGKILL");
const after = await httpRequest(`${url}/x`, { localAddress: victimAddr });
log("after kill of b0:", victimAddr, "->", after.status, after.headers["x-node-id"]);

log("nginx prefix contents:", await readdir(ndir), (await stat(ndir)).mode.toString(8));
await nginx.stop("SIGTERM");
await backends[1]!.stop();
await redis.stop();
destroyAgents();
log("nginx output tail:\n" + nginx.tail().split("\n").slice(-4).join("\n"));
await rm(dir, { recursive: true, force: true });
log("done");
