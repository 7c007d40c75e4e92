import { expect } from "chai";
import type { ManagerOptions, SocketOptions } from "socket.io-client";
import {
  Api,
  type Device,
  Devices,
  newUsers,
  settle,
  type TestUser,
  WAIT_MS,
} from "./support/clients.js";
import { type Cluster, startCluster } from "./support/cluster.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";

const NODES = 3;
const PRESENCE_TTL_SECONDS = 3;

type ClientOptions = Partial<ManagerOptions & SocketOptions>;

/** Reconnects quickly, as a real client would, to whichever node nginx picks. */
const RECONNECTING: ClientOptions = {
  reconnection: true,
  reconnectionDelay: 100,
  reconnectionDelayMax: 500,
};

/** Polls `check` until it holds; fails after `timeoutMs`, naming `what`. */
async function eventually(
  what: string,
  check: () => boolean,
  timeoutMs = WAIT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`waited ${timeoutMs} ms for ${what}`);
    }
    await settle(50);
  }
}

async function send(device: Device, chatId: number, text: string) {
  const ack = await device.ask("message:send", { chat_id: chatId, text });
  expect(ack, JSON.stringify(ack)).to.include({ ok: true });
  return ack.message.seq as number;
}

function seqsSeen(device: Device, chatId: number): number[] {
  return device
    .received("message:new", (m) => m.chat_id === chatId)
    .map((m) => m.seq);
}

/**
 * Every device gets exactly the messages `seqs` of the chat, each once.
 * Events from different nodes may cross, so arrival order is not checked.
 */
async function expectEachOnce(
  devices: Device[],
  chatId: number,
  seqs: number[],
): Promise<void> {
  for (const device of devices) {
    await device.waitFor(
      "message:new",
      (m) => m.chat_id === chatId,
      seqs.length,
    );
  }
  await settle();
  for (const device of devices) {
    const seen = seqsSeen(device, chatId).sort((a, b) => a - b);
    expect(seen).to.deep.equal(seqs);
  }
}

/** Whether the message `seq` of the chat reaches `device` within `ms`. */
async function arrives(
  device: Device,
  chatId: number,
  seq: number,
  ms: number,
) {
  const seen = () => seqsSeen(device, chatId).includes(seq);
  await eventually(`seq ${seq}`, seen, ms).catch(() => undefined);
  return seen();
}

function waitForReconnect(device: Device, timeoutMs = 10_000) {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no reconnect within ${timeoutMs} ms`)),
      timeoutMs,
    );
    device.socket.io.once("reconnect", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe("a cluster of three nodes behind nginx", function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let cluster: Cluster;
  const devices = new Devices();

  before(async function () {
    this.timeout(120_000);
    db = await createTestDatabase();
    cluster = await startCluster({
      nodes: NODES,
      databaseUrl: db.url,
      env: {
        PRESENCE_TTL_SECONDS: String(PRESENCE_TTL_SECONDS),
        RATE_LIMIT_MESSAGES: "1000",
      },
    });
  });

  after(async () => {
    await cluster?.stop();
    await db?.drop();
  });

  afterEach(async function () {
    devices.closeAll();
    if (this.currentTest?.state === "failed") console.error(cluster.logs());
    for (let i = 0; i < NODES; i++) {
      if (!cluster.isRunning(i)) await cluster.restartNode(i);
    }
  });

  /**
   * A device through nginx that lands on node `i`: it connects from a
   * loopback address that nginx's hash sends there.
   */
  function connectOn(
    user: TestUser,
    i: number,
    options: ClientOptions = {},
  ): Promise<Device> {
    // socket.io-client types `agent` as string | boolean; in Node both
    // transports hand it to http.request (polling) and ws (WebSocket).
    const agent = cluster.agentOn(i) as unknown as string;
    return devices.connect(cluster.nginxUrl, user.token, {
      agent,
      ...options,
    });
  }

  function users(count: number): Promise<TestUser[]> {
    return newUsers(cluster.nginxUrl, count);
  }

  async function privateChat(a: TestUser, b: TestUser): Promise<number> {
    const created = await a.api.post("/chats", {
      type: "private",
      user_id: b.id,
    });
    expect(created.status).to.equal(201);
    return created.body.id as number;
  }

  async function groupChat(owner: TestUser, members: TestUser[]) {
    const created = await owner.api.post("/chats", {
      type: "group",
      name: "cluster group",
      member_ids: members.map((m) => m.id),
    });
    expect(created.status).to.equal(201);
    return created.body.id as number;
  }

  it("when two people on different nodes talk in a private chat, each gets every message once", async () => {
    const [alice, bob] = await users(2);
    const chatId = await privateChat(alice!, bob!);
    const a = await connectOn(alice!, 0);
    const b = await connectOn(bob!, 1);

    await send(a, chatId, "hello from node 0");
    await send(b, chatId, "hello from node 1");
    await send(a, chatId, "see you");

    await expectEachOnce([a, b], chatId, [1, 2, 3]);
  });

  it("when a group spans three nodes, every member gets every message once and an outsider on a member's node gets none", async () => {
    const [owner, m1, m2, outsider] = await users(4);
    const chatId = await groupChat(owner!, [m1!, m2!]);
    const members = [
      await connectOn(owner!, 0),
      await connectOn(m1!, 1),
      await connectOn(m2!, 2),
    ];
    const stranger = await connectOn(outsider!, 1);

    for (const [i, device] of members.entries()) {
      await send(device, chatId, `from node ${i}`);
    }

    await expectEachOnce(members, chatId, [1, 2, 3]);
    expect(stranger.received("message:new")).to.have.length(0);
  });

  it("when a client can only long-poll, it connects through nginx, stays on its node and chats with a WebSocket client on another", async () => {
    const [alice, bob] = await users(2);
    const chatId = await privateChat(alice!, bob!);
    const poller = await connectOn(alice!, 0, { transports: ["polling"] });
    const ws = await connectOn(bob!, 1);
    let dropped = 0;
    poller.socket.on("disconnect", () => (dropped += 1));

    // Each message ends one poll and starts the next: many requests, all
    // of which must reach the node that holds the session.
    for (let round = 0; round < 5; round++) {
      await send(poller, chatId, `poll ${round}`);
      await send(ws, chatId, `socket ${round}`);
    }

    const all = Array.from({ length: 10 }, (_, i) => i + 1);
    await expectEachOnce([poller, ws], chatId, all);
    expect(poller.socket.io.engine.transport.name).to.equal("polling");
    expect(dropped).to.equal(0);
  });

  it("when a user has devices on two nodes, each device gets each message, read and typing event once", async () => {
    const [alice, bob] = await users(2);
    const chatId = await privateChat(alice!, bob!);
    const phone = await connectOn(alice!, 0);
    const laptop = await connectOn(alice!, 1);
    const b = await connectOn(bob!, 2);

    await send(b, chatId, "one");
    await send(phone, chatId, "two");
    await send(laptop, chatId, "three");
    await expectEachOnce([phone, laptop, b], chatId, [1, 2, 3]);

    const read = await b.ask("message:read", { chat_id: chatId, seq: 3 });
    expect(read).to.deep.equal({ ok: true, last_read_seq: 3 });
    const typing = await b.ask("typing", { chat_id: chatId, typing: true });
    expect(typing).to.deep.equal({ ok: true });

    for (const device of [phone, laptop]) {
      await device.waitFor("message:read", (r) => r.user_id === bob!.id);
      await device.waitFor("typing", (t) => t.user_id === bob!.id);
    }
    await settle();
    for (const device of [phone, laptop]) {
      expect(device.received("message:read")).to.have.length(1);
      expect(device.received("typing")).to.have.length(1);
    }
    expect(b.received("typing")).to.have.length(0);
  });

  it("when the owner on one node removes a member, the member's device on another node stops receiving at once", async () => {
    const [owner, leaving, staying] = await users(3);
    const chatId = await groupChat(owner!, [leaving!, staying!]);
    const o = await connectOn(owner!, 0);
    const gone = await connectOn(leaving!, 1);
    const s = await connectOn(staying!, 2);
    await send(o, chatId, "before");
    await expectEachOnce([o, gone, s], chatId, [1]);

    const ownerOnNode0 = new Api(cluster.nodeUrls[0]!, owner!.token);
    const removed = await ownerOnNode0.delete(
      `/chats/${chatId}/members/${leaving!.id}`,
    );
    expect(removed.status).to.equal(204);
    // Straight after the answer, from the owner's node and from a third.
    await send(o, chatId, "after, from node 0");
    await send(s, chatId, "after, from node 2");

    await expectEachOnce([o, s], chatId, [1, 2, 3]);
    await gone.waitFor("chat:updated", (chat) => chat.id === chatId);
    expect(seqsSeen(gone, chatId)).to.deep.equal([1]);
    const refused = await gone.ask("message:send", {
      chat_id: chatId,
      text: "still here?",
    });
    expect(refused.ok).to.equal(false);
  });

  it("when a user's last device disconnects, people sharing a chat see them go offline, and not before", async () => {
    const [alice, bob] = await users(2);
    const chatId = await privateChat(alice!, bob!);
    const watcher = await connectOn(bob!, 1);
    const isAlice = (p: { user_id: number }) => p.user_id === alice!.id;
    const phone = await connectOn(alice!, 0);
    const laptop = await connectOn(alice!, 2);
    await watcher.waitFor("presence", (p) => isAlice(p) && p.online);

    phone.close();
    await settle(500);
    expect(watcher.received("presence", isAlice)).to.deep.equal([
      { user_id: alice!.id, online: true },
    ]);

    laptop.close();
    await watcher.waitFor("presence", (p) => isAlice(p) && !p.online);
    const chat = await bob!.api.get(`/chats/${chatId}`);
    const member = chat.body.members.find(
      (m: { user_id: number }) => m.user_id === alice!.id,
    );
    expect(member.online).to.equal(false);
  });

  it("when a node dies with SIGKILL, its clients reconnect through nginx and catch up from history without a gap", async () => {
    const [alice, bob] = await users(2);
    const chatId = await privateChat(alice!, bob!);
    const a = await connectOn(alice!, 0, RECONNECTING);
    const b = await connectOn(bob!, 1);
    await send(b, chatId, "one");
    await a.waitFor("message:new", (m) => m.chat_id === chatId);
    const lastSeen = Math.max(...seqsSeen(a, chatId));
    const reconnected = waitForReconnect(a);

    const killed = await cluster.killNode(0, "SIGKILL");
    expect(killed.signal).to.equal("SIGKILL");
    await send(b, chatId, "two, while node 0 is down");
    await send(b, chatId, "three");
    await reconnected;

    const history = await alice!.api.get(
      `/history/${chatId}?after=${lastSeen}`,
    );
    expect(history.status).to.equal(200);
    await send(b, chatId, "four, live again");
    await a.waitFor("message:new", (m) => m.seq === 4);
    const caughtUp = new Set([
      ...seqsSeen(a, chatId),
      ...history.body.map((m: { seq: number }) => m.seq),
    ]);
    expect([...caughtUp].sort((x, y) => x - y)).to.deep.equal([1, 2, 3, 4]);

    await send(a, chatId, "back from another node");
    await b.waitFor("message:new", (m) => m.seq === 5);
  });

  it("when a node crashes, its users go offline for the others within PRESENCE_TTL_SECONDS", async () => {
    const [alice, bob] = await users(2);
    await privateChat(alice!, bob!);
    const watcher = await connectOn(bob!, 1);
    await connectOn(alice!, 2);
    const isAlice = (p: { user_id: number }) => p.user_id === alice!.id;
    await watcher.waitFor("presence", (p) => isAlice(p) && p.online);

    const crashedAt = Date.now();
    await cluster.killNode(2, "SIGKILL");
    // Entries expire TTL after the last heartbeat; sweeps run each second.
    const bound = (PRESENCE_TTL_SECONDS + 2) * 1000;
    await eventually(
      "alice to go offline",
      () =>
        watcher.received("presence", (p) => isAlice(p) && !p.online).length > 0,
      bound,
    );
    expect(Date.now() - crashedAt).to.be.below(bound);
    expect(
      watcher.received("presence", (p) => isAlice(p) && !p.online),
    ).to.have.length(1);
  });

  it("when Redis restarts mid-chat, fan-out between nodes resumes without restarting the nodes", async () => {
    const [alice, bob] = await users(2);
    const chatId = await privateChat(alice!, bob!);
    const a = await connectOn(alice!, 0);
    const b = await connectOn(bob!, 1);
    await send(a, chatId, "before the restart");
    await expectEachOnce([a, b], chatId, [1]);

    try {
      await cluster.stopRedis("SIGKILL");
      await settle(1_000);
    } finally {
      await cluster.startRedis();
    }
    for (const url of cluster.nodeUrls) {
      await cluster.waitReady(url, { path: "/readyz", timeoutMs: 15_000 });
    }

    // Each node's subscriber reconnects on its own schedule; until it has,
    // a message reaches its own node only (clients catch up from history).
    // Probe both ways until one message has crossed each way.
    const crossed = async (from: Device, to: Device) =>
      arrives(to, chatId, await send(from, chatId, "probe"), 1_000);
    const deadline = Date.now() + 10_000;
    while (!(await crossed(a, b)) || !(await crossed(b, a))) {
      expect(Date.now(), "fan-out is back").to.be.below(deadline);
    }
    const fromA = await send(a, chatId, "after, from node 0");
    const fromB = await send(b, chatId, "after, from node 1");
    for (const device of [a, b]) {
      await device.waitFor("message:new", (m) => m.seq === fromA);
      await device.waitFor("message:new", (m) => m.seq === fromB);
    }
    for (let i = 0; i < NODES; i++) expect(cluster.isRunning(i)).to.equal(true);
  });

  it("when members are removed and added while Redis is down, the rooms follow the database once it is back", async () => {
    const [owner, stays, removed, added] = await users(4);
    const chatId = await groupChat(owner!, [stays!, removed!]);
    const o = await connectOn(owner!, 0);
    const s = await connectOn(stays!, 1);
    const c = await connectOn(removed!, 1);
    const d = await connectOn(added!, 2);
    await send(o, chatId, "before");
    await expectEachOnce([o, s, c], chatId, [1]);

    const ownerOnNode0 = new Api(cluster.nodeUrls[0]!, owner!.token);
    try {
      await cluster.stopRedis("SIGKILL");
      const gone = await ownerOnNode0.delete(
        `/chats/${chatId}/members/${removed!.id}`,
      );
      expect(gone.status, JSON.stringify(gone.body)).to.equal(204);
      const joined = await ownerOnNode0.post(`/chats/${chatId}/members`, {
        user_id: added!.id,
      });
      expect(joined.status, JSON.stringify(joined.body)).to.equal(200);
    } finally {
      await cluster.startRedis();
    }
    for (const url of cluster.nodeUrls) {
      await cluster.waitReady(url, { path: "/readyz", timeoutMs: 15_000 });
    }
    await settle(2_000);

    // Until every node's subscriber is back, a message may stay on its
    // own node: send until one reaches both node 1 and node 2.
    const heard = async (seq: number) =>
      (await arrives(d, chatId, seq, 1_000)) &&
      (await arrives(s, chatId, seq, 1_000));
    const deadline = Date.now() + 10_000;
    while (!(await heard(await send(o, chatId, "after")))) {
      if (Date.now() > deadline) {
        expect.fail(
          `10 s after Redis came back, the added member had heard ` +
            `[${seqsSeen(d, chatId).join()}] and the one who stayed ` +
            `[${seqsSeen(s, chatId).join()}]`,
        );
      }
    }
    await settle();
    expect(seqsSeen(c, chatId)).to.deep.equal([1]);
    const typing = await c.ask("typing", { chat_id: chatId, typing: true });
    expect(typing.ok, JSON.stringify(typing)).to.equal(false);
    expect(typing.error.code).to.equal("NOT_FOUND");
    const refused = await c.ask("message:send", {
      chat_id: chatId,
      text: "still here?",
    });
    expect(refused.ok).to.equal(false);
  });

  it("when someone leaves and someone arrives while Redis is down, the others hear both once it is back", async () => {
    const [watcher, leaver, arriver] = await users(3);
    const chatId = await groupChat(watcher!, [leaver!, arriver!]);
    const w = await connectOn(watcher!, 0);
    const l = await connectOn(leaver!, 1);
    await w.waitFor("presence", (p) => p.user_id === leaver!.id && p.online);

    try {
      await cluster.stopRedis("SIGKILL");
      l.close();
      await connectOn(arriver!, 1);
      await settle(500);
    } finally {
      await cluster.startRedis();
    }

    const told = (user: TestUser, online: boolean) =>
      w.waitFor(
        "presence",
        (p) => p.user_id === user.id && p.online === online,
        1,
        15_000,
      );
    await told(leaver!, false);
    await told(arriver!, true);
    const chat = await watcher!.api.get(`/chats/${chatId}`);
    const online = Object.fromEntries(
      chat.body.members.map((m: { user_id: number; online: boolean }) => [
        m.user_id,
        m.online,
      ]),
    );
    expect(online[leaver!.id]).to.equal(false);
    expect(online[arriver!.id]).to.equal(true);
  });

  it("when a node gets SIGTERM, it drains within 10 s, a send in flight is stored once and its clients carry on from another node", async () => {
    const [alice, bob] = await users(2);
    const chatId = await privateChat(alice!, bob!);
    const a = await connectOn(alice!, 2, RECONNECTING);
    const b = await connectOn(bob!, 1);
    const reconnected = waitForReconnect(a);
    const lastWords = {
      chat_id: chatId,
      text: "last words",
      client_id: "sent-while-draining",
    };

    const inFlight = a.ask("message:send", lastWords).catch(() => undefined);
    const stopped = await cluster.killNode(2, "SIGTERM");
    expect(stopped.code).to.equal(0);
    expect(stopped.elapsedMs).to.be.below(10_000);
    await reconnected;
    await inFlight;

    // Whatever became of the first attempt, the retry settles it.
    const retry = await a.ask("message:send", lastWords);
    expect(retry.ok, JSON.stringify(retry)).to.equal(true);
    const history = await bob!.api.get(`/history/${chatId}`);
    const stored = history.body.filter(
      (m: { client_id: string | null }) => m.client_id === lastWords.client_id,
    );
    expect(stored).to.have.length(1);
    await b.waitFor("message:new", (m) => m.text === "last words");

    const next = await send(a, chatId, "from another node");
    await b.waitFor("message:new", (m) => m.seq === next);
    expect(
      b.received("message:new", (m) => m.text === "last words"),
    ).to.have.length(1);
  });
});
