import { expect } from "chai";
import {
  type Device,
  newUsers,
  settle,
  type TestUser,
  WAIT_MS,
} from "./support/clients.js";
import { useTestNode } from "./support/node.js";

describe("Socket.IO on one node", () => {
  const ctx = useTestNode();
  const { devices } = ctx;

  async function privateChat(a: TestUser, b: TestUser): Promise<number> {
    const res = await a.api.post("/chats", { type: "private", user_id: b.id });
    return res.body.id as number;
  }

  it("when two people with two devices each talk in a private chat, every device gets each message once", async () => {
    const [alice, bob] = await newUsers(ctx.node.url, 2);
    const chatId = await privateChat(alice!, bob!);
    const [a1, a2, b1, b2] = await Promise.all([
      devices.connect(ctx.node.url, alice!.token),
      devices.connect(ctx.node.url, alice!.token),
      devices.connect(ctx.node.url, bob!.token),
      devices.connect(ctx.node.url, bob!.token),
    ]);

    const ack = await a1.ask("message:send", {
      chat_id: chatId,
      text: "hi bob",
    });
    expect(ack.ok).to.equal(true);
    expect(ack.duplicate).to.equal(false);
    expect(ack.message).to.include({
      chat_id: chatId,
      sender_id: alice!.id,
      seq: 1,
      text: "hi bob",
    });
    const reply = await b2.ask("message:send", {
      chat_id: chatId,
      text: "hi alice",
    });
    expect(reply.message.seq).to.equal(2);

    for (const device of [a1, a2, b1, b2]) {
      const got = await device.waitFor("message:new", () => true, 2);
      expect(got.map((m) => m.text)).to.deep.equal(["hi bob", "hi alice"]);
    }
    await settle();
    for (const device of [a1, a2, b1, b2]) {
      expect(device.received("message:new")).to.have.length(2);
    }
  });

  it("when a group of three talks, every member's devices get every message and outsiders get none", async () => {
    const [owner, m1, m2, outsider] = await newUsers(ctx.node.url, 4);
    const created = await owner!.api.post("/chats", {
      type: "group",
      name: "trio",
      member_ids: [m1!.id, m2!.id],
    });
    expect(created.status).to.equal(201);
    const chatId = created.body.id as number;
    const members = await Promise.all(
      [owner!, owner!, m1!, m1!, m2!, m2!].map((u) =>
        devices.connect(ctx.node.url, u.token),
      ),
    );
    const stranger = await devices.connect(ctx.node.url, outsider!.token);

    await members[2]!.ask("message:send", { chat_id: chatId, text: "one" });
    await members[4]!.ask("message:send", { chat_id: chatId, text: "two" });
    await members[0]!.ask("message:send", { chat_id: chatId, text: "three" });

    for (const device of members) {
      const got = await device.waitFor(
        "message:new",
        (m) => m.chat_id === chatId,
        3,
      );
      expect(got.map((m) => m.seq)).to.deep.equal([1, 2, 3]);
    }
    await settle();
    expect(stranger.received("message:new")).to.have.length(0);
    const refused = await stranger.ask("message:send", {
      chat_id: chatId,
      text: "let me in",
    });
    expect(refused).to.deep.equal({
      ok: false,
      error: { code: "NOT_FOUND", message: "chat not found" },
    });
  });

  it("when two devices of one user send the same client_id at once, one message is stored and broadcast once", async () => {
    const [alice, bob] = await newUsers(ctx.node.url, 2);
    const chatId = await privateChat(alice!, bob!);
    const [a1, a2, b1] = await Promise.all([
      devices.connect(ctx.node.url, alice!.token),
      devices.connect(ctx.node.url, alice!.token),
      devices.connect(ctx.node.url, bob!.token),
    ]);
    const payload = {
      chat_id: chatId,
      text: "only once",
      client_id: "retry-1",
    };
    const acks = await Promise.all([
      a1.ask("message:send", payload),
      a2.ask("message:send", payload),
      a1.ask("message:send", payload),
    ]);

    expect(acks.every((a) => a.ok)).to.equal(true);
    expect(new Set(acks.map((a) => a.message.id)).size).to.equal(1);
    expect(acks.filter((a) => a.duplicate === false)).to.have.length(1);
    await settle(500);
    for (const device of [a1, a2, b1]) {
      expect(device.received("message:new")).to.have.length(1);
    }
    const history = await bob!.api.get(`/history/${chatId}`);
    expect(history.body).to.have.length(1);
  });

  it("when many senders race in one chat, seq runs 1..N without gaps and live order equals history", async () => {
    const users = await newUsers(ctx.node.url, 6);
    const [owner, ...rest] = users;
    const created = await owner!.api.post("/chats", {
      type: "group",
      name: "race",
      member_ids: rest.map((u) => u.id),
    });
    const chatId = created.body.id as number;
    const senders = await Promise.all(
      users.map((u) => devices.connect(ctx.node.url, u.token)),
    );
    const perSender = 20;

    await Promise.all(
      senders.map(async (device, i) => {
        await Promise.all(
          Array.from({ length: perSender }, (_, k) =>
            device.ask("message:send", {
              chat_id: chatId,
              text: `s${i} m${k}`,
            }),
          ),
        );
      }),
    );

    const total = users.length * perSender;
    const history = await owner!.api.get(`/history/${chatId}?limit=100`);
    const rest2 = await owner!.api.get(
      `/history/${chatId}?after=100&limit=100`,
    );
    const stored = [...history.body, ...rest2.body];
    expect(stored.map((m) => m.seq)).to.deep.equal(
      Array.from({ length: total }, (_, i) => i + 1),
    );
    const times = stored.map((m) => Date.parse(m.timestamp));
    expect(times).to.deep.equal([...times].sort((a, b) => a - b));
    const live = await senders[0]!.waitFor("message:new", () => true, total);
    expect(live.map((m) => m.id)).to.deep.equal(stored.map((m) => m.id));
  });

  it("when a burst mixes good sends, a repeated client_id and an outsider, each gets its own answer and seq stays gapless", async () => {
    const [owner, member, outsider] = await newUsers(ctx.node.url, 3);
    const created = await owner!.api.post("/chats", {
      type: "group",
      name: "mixed",
      member_ids: [member!.id],
    });
    const chatId = created.body.id as number;
    const [o, m, x] = (await Promise.all(
      [owner!, member!, outsider!].map((u) =>
        devices.connect(ctx.node.url, u.token),
      ),
    )) as [Device, Device, Device];
    const acks = await Promise.all([
      o.ask("message:send", { chat_id: chatId, text: "a" }),
      m.ask("message:send", { chat_id: chatId, text: "b", client_id: "same" }),
      x.ask("message:send", { chat_id: chatId, text: "intruder" }),
      m.ask("message:send", { chat_id: chatId, text: "b", client_id: "same" }),
      o.ask("message:send", { chat_id: chatId, text: "c" }),
      ...Array.from({ length: 10 }, (_, i) =>
        m.ask("message:send", { chat_id: chatId, text: `d${i}` }),
      ),
    ]);

    expect(acks[2]).to.deep.equal({
      ok: false,
      error: { code: "NOT_FOUND", message: "chat not found" },
    });
    expect(acks[1].message.id).to.equal(acks[3].message.id);
    expect([acks[1].duplicate, acks[3].duplicate].sort()).to.deep.equal([
      false,
      true,
    ]);
    const history = await owner!.api.get(`/history/${chatId}`);
    expect(history.body.map((h: { seq: number }) => h.seq)).to.deep.equal(
      Array.from({ length: 13 }, (_, i) => i + 1),
    );
    expect(history.body.map((h: { text: string }) => h.text)).to.not.include(
      "intruder",
    );
    const live = await o.waitFor(
      "message:new",
      (msg) => msg.chat_id === chatId,
      13,
    );
    expect(live.map((msg) => msg.seq)).to.deep.equal(
      history.body.map((h: { seq: number }) => h.seq),
    );
  });

  it("when a burst repeats client_ids, stored earlier or within the burst, each repeat gets the stored message and the rest are stored once", async () => {
    const [alice, bob] = await newUsers(ctx.node.url, 2);
    const chatId = await privateChat(alice!, bob!);
    const [a, b] = (await Promise.all(
      [alice!, bob!].map((u) => devices.connect(ctx.node.url, u.token)),
    )) as [Device, Device];
    const send = (text: string, client_id: string) =>
      a.ask("message:send", { chat_id: chatId, text, client_id });
    const first = await Promise.all(
      Array.from({ length: 5 }, (_, i) => send(`old ${i}`, `old-${i}`)),
    );

    const burst = await Promise.all([
      ...Array.from({ length: 5 }, (_, i) => send(`old ${i}`, `old-${i}`)),
      ...Array.from({ length: 10 }, (_, i) => send(`new ${i}`, `new-${i % 5}`)),
      ...Array.from({ length: 5 }, (_, i) => send(`more ${i}`, `more-${i}`)),
    ]);

    expect(burst.every((ack) => ack.ok)).to.equal(true);
    expect(burst.slice(0, 5).map((ack) => ack.message.id)).to.deep.equal(
      first.map((ack) => ack.message.id),
    );
    expect(burst.slice(0, 5).every((ack) => ack.duplicate)).to.equal(true);
    const repeats = burst.slice(5, 15);
    expect(repeats.filter((ack) => !ack.duplicate)).to.have.length(5);
    for (let i = 0; i < 5; i++) {
      expect(repeats[i]!.message.id).to.equal(repeats[i + 5]!.message.id);
    }
    const history = await alice!.api.get(`/history/${chatId}`);
    expect(history.body.map((m: { seq: number }) => m.seq)).to.deep.equal(
      Array.from({ length: 15 }, (_, i) => i + 1),
    );
    await b.waitFor("message:new", (m) => m.chat_id === chatId, 15);
    await settle();
    expect(b.received("message:new")).to.have.length(15);
  });

  it("when a group is created, an already connected member's socket gets chat:updated and then its messages", async () => {
    const [owner, member] = await newUsers(ctx.node.url, 2);
    const device = await devices.connect(ctx.node.url, member!.token);
    const created = await owner!.api.post("/chats", {
      type: "group",
      name: "late",
      member_ids: [member!.id],
    });
    const chatId = created.body.id as number;

    const [update] = await device.waitFor(
      "chat:updated",
      (c) => c.id === chatId,
    );
    expect(update!.members.map((m) => m.user_id)).to.have.members([
      owner!.id,
      member!.id,
    ]);
    await owner!.api.post(`/chats/${chatId}/messages`, { text: "welcome" });
    const [message] = await device.waitFor(
      "message:new",
      (m) => m.chat_id === chatId,
    );
    expect(message!.text).to.equal("welcome");
  });

  it("when a member reads, every member's sockets get message:read and is_read flips", async () => {
    const [alice, bob] = await newUsers(ctx.node.url, 2);
    const chatId = await privateChat(alice!, bob!);
    const [a1, b1] = await Promise.all([
      devices.connect(ctx.node.url, alice!.token),
      devices.connect(ctx.node.url, bob!.token),
    ]);
    const sent = await a1.ask("message:send", {
      chat_id: chatId,
      text: "read me",
    });
    expect(sent.message.is_read).to.equal(false);

    const ack = await b1.ask("message:read", { chat_id: chatId, seq: 1 });
    expect(ack).to.deep.equal({ ok: true, last_read_seq: 1 });
    const [notice] = await a1.waitFor("message:read");
    expect(notice).to.include({
      chat_id: chatId,
      user_id: bob!.id,
      last_read_seq: 1,
    });
    expect(Number.isNaN(Date.parse(notice!.read_at))).to.equal(false);
    const history = await alice!.api.get(`/history/${chatId}`);
    expect(history.body[0].is_read).to.equal(true);

    const again = await b1.ask("message:read", { chat_id: chatId, seq: 0 });
    expect(again).to.deep.equal({ ok: true, last_read_seq: 1 });
    await settle();
    expect(a1.received("message:read")).to.have.length(1);
  });

  it("when someone types, the other members see it and the typist's own devices do not", async () => {
    const [alice, bob] = await newUsers(ctx.node.url, 2);
    const chatId = await privateChat(alice!, bob!);
    const [a1, a2, b1] = await Promise.all([
      devices.connect(ctx.node.url, alice!.token),
      devices.connect(ctx.node.url, alice!.token),
      devices.connect(ctx.node.url, bob!.token),
    ]);
    expect(
      await a1.ask("typing", { chat_id: chatId, typing: true }),
    ).to.deep.equal({ ok: true });
    const [notice] = await b1.waitFor("typing");
    expect(notice).to.deep.equal({
      chat_id: chatId,
      user_id: alice!.id,
      typing: true,
    });
    await settle();
    expect(a1.received("typing")).to.have.length(0);
    expect(a2.received("typing")).to.have.length(0);
  });

  it("when a payload is bad, the ack says VALIDATION naming the field and nothing is stored", async () => {
    const [alice, bob] = await newUsers(ctx.node.url, 2);
    const chatId = await privateChat(alice!, bob!);
    const a1 = await devices.connect(ctx.node.url, alice!.token);
    const cases: [unknown, string][] = [
      [{ chat_id: chatId, text: "   " }, "text"],
      [{ chat_id: chatId, text: "x".repeat(4001) }, "text"],
      [{ chat_id: chatId, text: "ok", client_id: "c".repeat(65) }, "client_id"],
      [{ chat_id: "abc", text: "ok" }, "chat_id"],
      [{ text: "ok" }, "chat_id"],
      ["just a string", "payload"],
    ];
    for (const [payload, field] of cases) {
      const ack = await a1.ask("message:send", payload as never);
      expect(ack.ok, JSON.stringify(payload)).to.equal(false);
      expect(ack.error.code).to.equal("VALIDATION");
      expect(ack.error.message).to.contain(field);
    }
    const history = await alice!.api.get(`/history/${chatId}`);
    expect(history.body).to.have.length(0);
    expect(a1.socket.connected).to.equal(true);
  });

  it('when a chat_id is not a JSON number ("17", true, [17]), every event\'s ack says VALIDATION naming chat_id and nothing happens', async () => {
    const [alice, bob] = await newUsers(ctx.node.url, 2);
    const chatId = await privateChat(alice!, bob!);
    const [a1, b1] = await Promise.all([
      devices.connect(ctx.node.url, alice!.token),
      devices.connect(ctx.node.url, bob!.token),
    ]);
    for (const chat_id of [String(chatId), true, [chatId], `${chatId}.0`]) {
      const label = JSON.stringify(chat_id);
      for (const [event, payload] of [
        ["message:send", { chat_id, text: "coerced?" }],
        ["message:read", { chat_id, seq: 1 }],
        ["typing", { chat_id, typing: true }],
      ] as const) {
        const ack = await a1.ask(event, payload as never);
        expect(ack.ok, `${event} ${label}`).to.equal(false);
        expect(ack.error.code).to.equal("VALIDATION");
        expect(ack.error.message).to.contain("chat_id");
      }
    }
    await settle();
    // Alice's coming online may or may not reach Bob, who connected at the
    // same moment; nothing else may.
    const others = b1.events.filter((e) => e.event !== "presence");
    expect(others).to.deep.equal([]);
    const history = await bob!.api.get(`/history/${chatId}`);
    expect(history.body).to.deep.equal([]);
  });

  it("when an event comes with only a callback and no payload, the ack says VALIDATION and the socket stays connected", async () => {
    const [alice, bob] = await newUsers(ctx.node.url, 2);
    const chatId = await privateChat(alice!, bob!);
    const a1 = await devices.connect(ctx.node.url, alice!.token);
    const socket = a1.socket.timeout(WAIT_MS) as any;
    for (const event of ["message:send", "message:read", "typing"]) {
      const ack = await socket.emitWithAck(event);
      expect(ack.ok, event).to.equal(false);
      expect(ack.error.code).to.equal("VALIDATION");
    }
    expect(a1.socket.connected).to.equal(true);
    const sent = await a1.ask("message:send", { chat_id: chatId, text: "ok" });
    expect(sent.ok).to.equal(true);
    const history = await bob!.api.get(`/history/${chatId}`);
    expect(history.body.map((m: { text: string }) => m.text)).to.deep.equal([
      "ok",
    ]);
  });

  it("when message:send carries an extra argument before the callback, it is still stored and answered", async () => {
    const [alice, bob] = await newUsers(ctx.node.url, 2);
    const chatId = await privateChat(alice!, bob!);
    const [a1, b1] = await Promise.all([
      devices.connect(ctx.node.url, alice!.token),
      devices.connect(ctx.node.url, bob!.token),
    ]);
    const socket = a1.socket.timeout(WAIT_MS) as any;
    const ack = await socket.emitWithAck(
      "message:send",
      { chat_id: chatId, text: "with extra" },
      "extra",
    );
    expect(ack.ok, JSON.stringify(ack)).to.equal(true);
    expect(ack.message).to.include({ seq: 1, text: "with extra" });
    const [heard] = await b1.waitFor("message:new");
    expect(heard).to.deep.equal(ack.message);
  });

  it("when an unknown event asks for an answer, the ack says VALIDATION naming the event and the socket stays connected", async () => {
    const [alice, bob] = await newUsers(ctx.node.url, 2);
    const chatId = await privateChat(alice!, bob!);
    const a1 = await devices.connect(ctx.node.url, alice!.token);
    const socket = a1.socket.timeout(WAIT_MS) as any;
    for (const args of [[], [{ chat_id: chatId }], ["a", 1, null]]) {
      const ack = await socket.emitWithAck("message:delete", ...args);
      expect(ack.ok).to.equal(false);
      expect(ack.error.code).to.equal("VALIDATION");
      expect(ack.error.message).to.contain("message:delete");
    }
    (a1.socket as any).emit("no:answer:wanted", { chat_id: chatId });
    expect(a1.socket.connected).to.equal(true);
    const sent = await a1.ask("message:send", {
      chat_id: chatId,
      text: "still talking",
    });
    expect(sent.ok).to.equal(true);
  });

  it("when a user connects and closes a second device, their own devices get no presence of them while the other member does", async () => {
    const [alice, bob] = await newUsers(ctx.node.url, 2);
    await privateChat(alice!, bob!);
    const isAlice = (p: { user_id: number }) => p.user_id === alice!.id;
    const watcher = await devices.connect(ctx.node.url, bob!.token);
    const a1 = await devices.connect(ctx.node.url, alice!.token);
    await watcher.waitFor("presence", (p) => isAlice(p) && p.online);

    const a2 = await devices.connect(ctx.node.url, alice!.token);
    await settle();
    a2.close();
    await settle();
    expect(a1.received("presence", isAlice)).to.deep.equal([]);
    expect(a2.received("presence", isAlice)).to.deep.equal([]);

    expect(watcher.received("presence", isAlice)).to.deep.equal([
      { user_id: alice!.id, online: true },
    ]);

    // The same devices do hear other people come and go.
    watcher.close();
    await a1.waitFor("presence", (p) => p.user_id === bob!.id && !p.online);
  });

  it("when the handshake has no token or a bad one, connect_error says unauthorized", async () => {
    for (const token of [undefined, "not-a-jwt"]) {
      try {
        await devices.connect(ctx.node.url, token);
        expect.fail("connected without a valid token");
      } catch (error) {
        expect((error as Error).message).to.equal("unauthorized");
      }
    }
  });

  it("when the token comes as a header or query parameter, the handshake accepts it", async () => {
    const [alice] = await newUsers(ctx.node.url, 1);
    const viaQuery = await devices.connect(ctx.node.url, undefined, {
      query: { token: alice!.token },
    });
    expect(viaQuery.socket.connected).to.equal(true);
    const viaHeader = await devices.connect(ctx.node.url, undefined, {
      transports: ["polling"],
      extraHeaders: { authorization: `Bearer ${alice!.token}` },
    });
    expect(viaHeader.socket.connected).to.equal(true);
  });

  it("when a frame exceeds the limit, only that socket is dropped", async () => {
    const [alice, bob] = await newUsers(ctx.node.url, 2);
    const chatId = await privateChat(alice!, bob!);
    const [big, b1] = await Promise.all([
      devices.connect(ctx.node.url, alice!.token),
      devices.connect(ctx.node.url, bob!.token),
    ]);
    big.socket.emit(
      "message:send",
      { chat_id: chatId, text: "x".repeat(200_000) },
      () => {},
    );
    await new Promise((resolve) => big.socket.once("disconnect", resolve));
    const ack = await b1.ask("message:send", {
      chat_id: chatId,
      text: "still here",
    });
    expect(ack.ok).to.equal(true);
  });
});
