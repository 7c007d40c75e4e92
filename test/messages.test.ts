import { expect } from "chai";
import {
  newUsers,
  type Reply,
  settle,
  type TestUser,
} from "./support/clients.js";
import type { ChatNode } from "../services/chat/src/node.js";
import { startTestNode, useTestNode } from "./support/node.js";

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const MISSING_ID = 2_000_000_000;

interface Msg {
  id: number;
  chat_id: number;
  sender_id: number;
  text: string;
  timestamp: string;
  seq: number;
  client_id: string | null;
  is_read: boolean;
}

function expectError(reply: Reply, status: number, code: string): void {
  expect(reply.status, JSON.stringify(reply.body)).to.equal(status);
  expect(reply.body.error.code).to.equal(code);
  expect(reply.body.error.message).to.be.a("string").with.length.above(0);
}

const seqs = (reply: Reply<Msg[]>) => reply.body.map((m) => m.seq);

describe("messages, history and read status", () => {
  const ctx = useTestNode();
  const { devices } = ctx;

  async function pair(): Promise<[TestUser, TestUser, number]> {
    const [alice, bob] = await newUsers(ctx.node.url, 2, "msg");
    const chat = await alice!.api.post("/chats", {
      type: "private",
      user_id: bob!.id,
    });
    return [alice!, bob!, chat.body.id];
  }

  async function trio(): Promise<[TestUser, TestUser, TestUser, number]> {
    const [owner, m1, m2] = await newUsers(ctx.node.url, 3, "grp");
    const chat = await owner!.api.post("/chats", {
      type: "group",
      name: "three",
      member_ids: [m1!.id, m2!.id],
    });
    return [owner!, m1!, m2!, chat.body.id];
  }

  const send = (
    user: TestUser,
    chatId: number,
    text: string,
    clientId?: string,
  ) =>
    user.api.post(`/chats/${chatId}/messages`, {
      text,
      ...(clientId !== undefined && { client_id: clientId }),
    });

  async function sendMany(user: TestUser, chatId: number, count: number) {
    for (let i = 1; i <= count; i++) {
      const res = await send(user, chatId, `m${i}`);
      expect(res.status).to.equal(201);
    }
  }

  const unreadOf = async (user: TestUser, chatId: number) =>
    (await user.api.get(`/chats/${chatId}`)).body.unread_count as number;

  describe("sending over REST", () => {
    it("when a member sends, the answer is 201 with every Message field and every device hears it once", async () => {
      const [alice, bob, chatId] = await pair();
      const [a1, b1] = await Promise.all([
        devices.connect(ctx.node.url, alice.token),
        devices.connect(ctx.node.url, bob.token),
      ]);

      const res = await send(alice, chatId, "hello bob");
      expect(res.status).to.equal(201);
      expect(res.body).to.have.all.keys(
        "id",
        "chat_id",
        "sender_id",
        "text",
        "timestamp",
        "seq",
        "client_id",
        "is_read",
      );
      expect(res.body).to.include({
        chat_id: chatId,
        sender_id: alice.id,
        text: "hello bob",
        seq: 1,
        client_id: null,
        is_read: false,
      });
      expect(res.body.id).to.be.a("number");
      expect(res.body.timestamp).to.match(ISO_MS);
      expect(Date.parse(res.body.timestamp)).to.be.closeTo(Date.now(), 60_000);

      for (const device of [a1, b1]) {
        const [live] = await device.waitFor("message:new");
        expect(live).to.deep.equal(res.body);
      }
      const history = await bob.api.get<Msg[]>(`/history/${chatId}`);
      expect(history.body).to.deep.equal([res.body]);
      await settle();
      expect(a1.received("message:new")).to.have.length(1);
      expect(b1.received("message:new")).to.have.length(1);
    });

    it("when a client_id is repeated, the answer is 200 with the stored message, nothing new is stored or broadcast", async () => {
      const [alice, bob, chatId] = await pair();
      const b1 = await devices.connect(ctx.node.url, bob.token);

      const first = await send(alice, chatId, "once", "c-1");
      expect(first.status).to.equal(201);
      expect(first.body.client_id).to.equal("c-1");
      const again = await send(alice, chatId, "once", "c-1");
      expect(again.status).to.equal(200);
      expect(again.body).to.deep.equal(first.body);
      const changed = await send(alice, chatId, "different text", "c-1");
      expect(changed.status).to.equal(200);
      expect(changed.body.text).to.equal("once");

      const a1 = await devices.connect(ctx.node.url, alice.token);
      const overSocket = await a1.ask("message:send", {
        chat_id: chatId,
        text: "once",
        client_id: "c-1",
      });
      expect(overSocket).to.deep.include({ ok: true, duplicate: true });
      expect(overSocket.message.id).to.equal(first.body.id);

      const next = await send(alice, chatId, "next");
      expect(next.body.seq).to.equal(2);
      await b1.waitFor("message:new", (m) => m.seq === 2);
      await settle();
      expect(b1.received("message:new").map((m) => m.seq)).to.deep.equal([
        1, 2,
      ]);
      const history = await bob.api.get<Msg[]>(`/history/${chatId}`);
      expect(seqs(history)).to.deep.equal([1, 2]);
    });

    it("when another sender or another chat uses the same client_id, it is a new message", async () => {
      const [alice, bob, chatId] = await pair();
      const [carol] = await newUsers(ctx.node.url, 1, "msg");
      const other = await alice.api.post("/chats", {
        type: "private",
        user_id: carol!.id,
      });

      expect((await send(alice, chatId, "a", "same")).status).to.equal(201);
      expect((await send(bob, chatId, "b", "same")).status).to.equal(201);
      expect((await send(alice, other.body.id, "c", "same")).status).to.equal(
        201,
      );
      const history = await bob.api.get<Msg[]>(`/history/${chatId}`);
      expect(history.body.map((m) => m.text)).to.deep.equal(["a", "b"]);
    });

    it("when the text is empty, only white space, over 4000 characters or holds NUL, the answer is 400 naming text and nothing is stored", async () => {
      const [alice, bob, chatId] = await pair();
      const b1 = await devices.connect(ctx.node.url, bob.token);
      const cases: [unknown, string][] = [
        [{ text: "" }, "text"],
        [{ text: " \n\t\u00a0\u3000 " }, "text"],
        [{ text: "x".repeat(4001) }, "text"],
        [{ text: "😀".repeat(4001) }, "text"],
        [{ text: "before\u0000after" }, "text"],
        [{}, "text"],
        [{ text: 42 }, "text"],
        [{ text: "ok", client_id: "" }, "client_id"],
        [{ text: "ok", client_id: "c".repeat(65) }, "client_id"],
      ];
      for (const [body, field] of cases) {
        const res = await alice.api.post(`/chats/${chatId}/messages`, body);
        expectError(res, 400, "VALIDATION");
        expect(
          res.body.error.message,
          JSON.stringify(body).slice(0, 60),
        ).to.contain(field);
      }
      await settle();
      expect(b1.received("message:new")).to.have.length(0);
      expect((await bob.api.get(`/history/${chatId}`)).body).to.deep.equal([]);
    });

    it("when the text is 4000 characters counting each emoji as one, it is accepted and stored intact", async () => {
      const [alice, bob, chatId] = await pair();
      const texts = [
        "😀".repeat(4000),
        `${"a".repeat(3000)}${"🎉".repeat(1000)}`,
        "x".repeat(4000),
      ];
      for (const text of texts) {
        expect([...text]).to.have.length(4000);
        const res = await send(alice, chatId, text);
        expect(res.status, JSON.stringify(res.body).slice(0, 200)).to.equal(
          201,
        );
        expect(res.body.text).to.equal(text);
      }
      const history = await bob.api.get<Msg[]>(`/history/${chatId}`);
      expect(history.body.map((m) => m.text)).to.deep.equal(texts);
    });

    it("when the client_id holds NUL, the answer is 400 VALIDATION, not a server failure", async () => {
      const [alice, , chatId] = await pair();
      const res = await send(alice, chatId, "hello", "bad\u0000id");
      expect(res.status, JSON.stringify(res.body)).to.equal(400);
      expect(res.body.error.code).to.equal("VALIDATION");
      expect(res.body.error.message).to.contain("client_id");
      const a1 = await devices.connect(ctx.node.url, alice.token);
      const ack = await a1.ask("message:send", {
        chat_id: chatId,
        text: "hello",
        client_id: "bad\u0000id",
      });
      expect(ack.ok).to.equal(false);
      expect(ack.error.code).to.equal("VALIDATION");
    });
    it("when the text or client_id holds a lone UTF-16 surrogate, REST and the socket answer 400 VALIDATION naming it and nothing is stored", async () => {
      const [alice, bob, chatId] = await pair();
      const [a1, b1] = await Promise.all([
        devices.connect(ctx.node.url, alice.token),
        devices.connect(ctx.node.url, bob.token),
      ]);
      const cases: [{ text: string; client_id?: string }, string][] = [
        [{ text: "k\ud800" }, "text"],
        [{ text: "\udc00 trailing half first" }, "text"],
        [{ text: "pair reversed \udc00\ud800" }, "text"],
        [{ text: "ok", client_id: "k\ud800" }, "client_id"],
        [{ text: "ok", client_id: "\udfffk" }, "client_id"],
      ];
      for (const [body, field] of cases) {
        const res = await alice.api.post(`/chats/${chatId}/messages`, body);
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, JSON.stringify(body)).to.contain(field);
        const ack = await a1.ask("message:send", { chat_id: chatId, ...body });
        expect(ack.ok, JSON.stringify(body)).to.equal(false);
        expect(ack.error.code).to.equal("VALIDATION");
        expect(ack.error.message).to.contain(field);
      }
      await settle();
      expect(b1.received("message:new")).to.have.length(0);
      expect((await bob.api.get(`/history/${chatId}`)).body).to.deep.equal([]);

      const paired = await send(alice, chatId, "a whole pair \ud83d\ude00");
      expect(paired.status).to.equal(201);
      expect(paired.body.text).to.equal("a whole pair 😀");
    });

    it("when two client_ids differ only by a lone surrogate, neither is taken for the other or for U+FFFD", async () => {
      const [alice, bob, chatId] = await pair();
      const replaced = await send(alice, chatId, "replacement", "k\ufffd");
      expect(replaced.status).to.equal(201);
      for (const clientId of ["k\ud800", "k\udbff", "k\udc00"]) {
        const res = await send(alice, chatId, "lone half", clientId);
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message).to.contain("client_id");
      }
      const history = await bob.api.get<Msg[]>(`/history/${chatId}`);
      expect(history.body.map((m) => [m.text, m.client_id])).to.deep.equal([
        ["replacement", "k\ufffd"],
      ]);
    });

    it("when the text is only zero-width spaces or format characters, REST and the socket answer 400 naming text and nothing is stored", async () => {
      const [alice, bob, chatId] = await pair();
      const a1 = await devices.connect(ctx.node.url, alice.token);
      for (const text of [
        "\u200b",
        "\u2060",
        "\ufeff",
        "\u200b\u2060\ufeff",
        " \u200b\n\u2060 ",
      ]) {
        const res = await send(alice, chatId, text);
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, JSON.stringify(text)).to.contain("text");
        const ack = await a1.ask("message:send", { chat_id: chatId, text });
        expect(ack.ok, JSON.stringify(text)).to.equal(false);
        expect(ack.error.code).to.equal("VALIDATION");
        expect(ack.error.message).to.contain("text");
      }
      expect((await bob.api.get(`/history/${chatId}`)).body).to.deep.equal([]);
      const visible = await send(alice, chatId, "\u200bhi\u2060");
      expect(visible.status).to.equal(201);
    });
  });

  describe("outsiders", () => {
    it("when someone who is not a member sends, reads or asks for history, the answer is 404 over REST and the socket", async () => {
      const [alice, bob, chatId] = await pair();
      const [outsider] = await newUsers(ctx.node.url, 1, "out");
      const b1 = await devices.connect(ctx.node.url, bob.token);
      const o1 = await devices.connect(ctx.node.url, outsider!.token);
      await send(alice, chatId, "private words");

      for (const id of [chatId, MISSING_ID]) {
        expectError(await outsider!.api.get(`/chats/${id}`), 404, "NOT_FOUND");
        expectError(
          await outsider!.api.get(`/history/${id}`),
          404,
          "NOT_FOUND",
        );
        expectError(
          await outsider!.api.get(`/history/${id}?after=0`),
          404,
          "NOT_FOUND",
        );
        expectError(await send(outsider!, id, "let me in"), 404, "NOT_FOUND");
        expectError(
          await outsider!.api.post(`/chats/${id}/read`, { seq: 1 }),
          404,
          "NOT_FOUND",
        );
        const sent = await o1.ask("message:send", {
          chat_id: id,
          text: "let me in",
        });
        expect(sent).to.deep.equal({
          ok: false,
          error: { code: "NOT_FOUND", message: "chat not found" },
        });
        const read = await o1.ask("message:read", { chat_id: id, seq: 1 });
        expect(read.ok).to.equal(false);
        expect(read.error.code).to.equal("NOT_FOUND");
      }
      await settle();
      expect(b1.received("message:new").map((m) => m.text)).to.deep.equal([
        "private words",
      ]);
      expect(b1.received("message:read")).to.have.length(0);
      expect(o1.received("message:new")).to.have.length(0);
      const history = await bob.api.get<Msg[]>(`/history/${chatId}`);
      expect(history.body.map((m) => m.text)).to.deep.equal(["private words"]);
    });
  });

  describe("history", () => {
    let alice: TestUser;
    let bob: TestUser;
    let chatId: number;
    const TOTAL = 57;

    before(async () => {
      [alice, bob, chatId] = await pair();
      await sendMany(alice, chatId, TOTAL);
    });

    const history = (query = "") => bob.api.get(`/history/${chatId}${query}`);
    const range = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => from + i);

    it("when no query is given, the oldest 50 come, oldest first", async () => {
      const res = await history();
      expect(res.status).to.equal(200);
      expect(seqs(res)).to.deep.equal(range(1, 50));
      expect(res.body.map((m: Msg) => m.text)).to.deep.equal(
        range(1, 50).map((i) => `m${i}`),
      );
    });

    it("when limit and offset are given, offset counts from the oldest", async () => {
      expect(seqs(await history("?limit=3"))).to.deep.equal([1, 2, 3]);
      expect(seqs(await history("?offset=2&limit=3"))).to.deep.equal([3, 4, 5]);
      expect(seqs(await history("?offset=55"))).to.deep.equal([56, 57]);
      expect(seqs(await history(`?offset=${TOTAL}`))).to.deep.equal([]);
      expect(seqs(await history("?limit=100"))).to.deep.equal(range(1, TOTAL));
    });

    it("when after is given, the messages after that seq come, oldest first", async () => {
      expect(seqs(await history("?after=54"))).to.deep.equal([55, 56, 57]);
      expect(seqs(await history("?after=2&limit=2"))).to.deep.equal([3, 4]);
      expect(seqs(await history("?after=0&limit=1"))).to.deep.equal([1]);
      expect(seqs(await history(`?after=${TOTAL}`))).to.deep.equal([]);
    });

    it("when before is given, the limit messages just before that seq come, oldest first", async () => {
      expect(seqs(await history("?before=4"))).to.deep.equal([1, 2, 3]);
      expect(seqs(await history("?before=10&limit=3"))).to.deep.equal([
        7, 8, 9,
      ]);
      expect(seqs(await history("?before=1"))).to.deep.equal([]);
      expect(seqs(await history("?before=1000&limit=2"))).to.deep.equal([
        56, 57,
      ]);
    });

    it("when limit is outside 1..100 or not a number, the answer is 400 naming limit", async () => {
      for (const limit of ["0", "101", "-1", "many"]) {
        const res = await history(`?limit=${limit}`);
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message).to.contain("limit");
      }
    });

    it("when limit is not plain decimal (1e1, 0x10, +5, 05), the answer is 400 naming limit, and an empty limit takes the default", async () => {
      for (const limit of ["1e1", "0x10", "%2B5", "05", "5.0", "%205"]) {
        const res = await history(`?limit=${limit}`);
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, limit).to.contain("limit");
      }
      for (const query of ["?after=1e1", "?before=0x10", "?offset=01"]) {
        const res = await history(query);
        expectError(res, 400, "VALIDATION");
      }
      expect(seqs(await history("?limit="))).to.deep.equal(range(1, 50));
      expect(seqs(await history("?limit=&after=55"))).to.deep.equal([56, 57]);
    });

    it("when offset, after and before are combined, the answer is 400 VALIDATION", async () => {
      for (const query of [
        "?offset=1&after=1",
        "?after=1&before=5",
        "?offset=1&before=5",
        "?offset=1&after=1&before=5",
      ]) {
        const res = await history(query);
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, query).to.match(/offset|after|before/);
      }
    });

    it("when after or before is negative or past what a seq can hold, the answer is 400, not a server failure", async () => {
      for (const query of [
        "?after=-1",
        "?before=0",
        "?offset=-1",
        "?after=3000000000",
        "?before=3000000000",
        "?offset=3000000000",
      ]) {
        const res = await history(query);
        expect(res.status, `${query}: ${JSON.stringify(res.body)}`).to.equal(
          400,
        );
        expect(res.body.error.code).to.equal("VALIDATION");
      }
    });

    it("when timestamps are read along seq, each is ISO 8601 UTC with milliseconds and none goes back", async () => {
      const all: Msg[] = (await history("?limit=100")).body;
      for (const m of all) expect(m.timestamp).to.match(ISO_MS);
      const times = all.map((m) => Date.parse(m.timestamp));
      times.reduce((previous, time, i) => {
        expect(time, `seq ${i + 1}`).to.be.at.least(previous);
        return time;
      });
      expect(all.every((m) => m.sender_id === alice.id)).to.equal(true);
    });
  });

  describe("read status", () => {
    it("when the other person reads in a private chat, is_read flips up to their marker and the marker only moves forward", async () => {
      const [alice, bob, chatId] = await pair();
      await sendMany(alice, chatId, 3);
      expect(await unreadOf(bob, chatId)).to.equal(3);

      const read = await bob.api.post(`/chats/${chatId}/read`, { seq: 2 });
      expect(read.status).to.equal(200);
      expect(read.body).to.deep.equal({
        chat_id: chatId,
        user_id: bob.id,
        last_read_seq: 2,
      });
      let history = await alice.api.get<Msg[]>(`/history/${chatId}`);
      expect(history.body.map((m) => m.is_read)).to.deep.equal([
        true,
        true,
        false,
      ]);
      expect(await unreadOf(bob, chatId)).to.equal(1);

      const back = await bob.api.post(`/chats/${chatId}/read`, { seq: 1 });
      expect(back.body.last_read_seq).to.equal(2);
      const zero = await bob.api.post(`/chats/${chatId}/read`, { seq: 0 });
      expect(zero.body.last_read_seq).to.equal(2);

      const past = await bob.api.post(`/chats/${chatId}/read`, { seq: 1000 });
      expect(past.body.last_read_seq).to.equal(3);
      history = await alice.api.get<Msg[]>(`/history/${chatId}`);
      expect(history.body.map((m) => m.is_read)).to.deep.equal([
        true,
        true,
        true,
      ]);
      expect(await unreadOf(bob, chatId)).to.equal(0);
      const chat = await alice.api.get(`/chats/${chatId}`);
      const bobs = chat.body.members.find(
        (m: { user_id: number }) => m.user_id === bob.id,
      );
      expect(bobs.last_read_seq).to.equal(3);
      expect(chat.body.last_message.is_read).to.equal(true);

      await send(alice, chatId, "later");
      const marker = await bob.api.post(`/chats/${chatId}/read`, { seq: 3 });
      expect(marker.body.last_read_seq).to.equal(3);
    });

    it("when the chat is empty, a read answers last_read_seq 0", async () => {
      const [, bob, chatId] = await pair();
      const res = await bob.api.post(`/chats/${chatId}/read`, { seq: 5 });
      expect(res.status).to.equal(200);
      expect(res.body.last_read_seq).to.equal(0);
    });

    it("when the read body is bad, the answer is 400 naming seq", async () => {
      const [, bob, chatId] = await pair();
      for (const body of [{}, { seq: -1 }, { seq: "2" }, { seq: 1.5 }]) {
        const res = await bob.api.post(`/chats/${chatId}/read`, body);
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, JSON.stringify(body)).to.contain("seq");
      }
    });

    it("when one of two others in a group has read, the message stays unread until the second reads", async () => {
      const [owner, m1, m2, chatId] = await trio();
      const sent = await send(owner, chatId, "all read?");
      expect(sent.body.is_read).to.equal(false);

      await m1.api.post(`/chats/${chatId}/read`, { seq: 1 });
      let history = await owner.api.get<Msg[]>(`/history/${chatId}`);
      expect(history.body[0]!.is_read).to.equal(false);

      await m2.api.post(`/chats/${chatId}/read`, { seq: 1 });
      history = await owner.api.get<Msg[]>(`/history/${chatId}`);
      expect(history.body[0]!.is_read).to.equal(true);
      const fromM1 = await m1.api.get<Msg[]>(`/history/${chatId}`);
      expect(fromM1.body[0]!.is_read).to.equal(true);
    });

    it("when people send, each sender's own marker moves to their message and unread_count counts only others' messages after it", async () => {
      const [owner, m1, m2, chatId] = await trio();
      await send(m1, chatId, "one");
      await send(m2, chatId, "two");
      await send(owner, chatId, "three");

      expect(await unreadOf(owner, chatId)).to.equal(0);
      expect(await unreadOf(m1, chatId)).to.equal(2);
      expect(await unreadOf(m2, chatId)).to.equal(1);
      const chat = await owner.api.get(`/chats/${chatId}`);
      const markers = Object.fromEntries(
        chat.body.members.map(
          (m: { user_id: number; last_read_seq: number }) => [
            m.user_id,
            m.last_read_seq,
          ],
        ),
      );
      expect(markers).to.deep.equal({ [owner.id]: 3, [m1.id]: 1, [m2.id]: 2 });

      await send(m1, chatId, "four");
      expect(await unreadOf(m1, chatId)).to.equal(0);
      expect(await unreadOf(owner, chatId)).to.equal(1);
      const history = await owner.api.get<Msg[]>(`/history/${chatId}`);
      // seq 3 (the owner's) waits for m2, whose marker is still at 2.
      expect(history.body.map((m) => m.is_read)).to.deep.equal([
        true,
        true,
        false,
        false,
      ]);
    });

    it("when a private chat's message is live, its is_read and timestamp match what history says", async () => {
      const [alice, bob, chatId] = await pair();
      const b1 = await devices.connect(ctx.node.url, bob.token);
      const ack = await b1.ask("message:send", {
        chat_id: chatId,
        text: "from the socket",
      });
      expect(ack.ok).to.equal(true);
      expect(ack.message.timestamp).to.match(ISO_MS);
      const history = await alice.api.get<Msg[]>(`/history/${chatId}`);
      expect(history.body[0]).to.deep.equal(ack.message);
    });
  });

  describe("rate limit", () => {
    let limited: ChatNode;

    before(async () => {
      limited = await startTestNode(ctx.db.url, {
        RATE_LIMIT_MESSAGES: "3",
        RATE_LIMIT_WINDOW_MS: "3600000",
      });
    });
    after(async () => {
      devices.closeAll();
      await limited?.stop();
    });

    it("when a user sends a 4th message over REST within the window, the answer is 429 RATE_LIMITED with Retry-After and nothing is stored", async () => {
      const [alice, bob] = await newUsers(limited.url, 2, "rate");
      const chat = await alice!.api.post("/chats", {
        type: "private",
        user_id: bob!.id,
      });
      const b1 = await devices.connect(limited.url, bob!.token);
      for (let i = 1; i <= 3; i++) {
        expect((await send(alice!, chat.body.id, `ok ${i}`)).status).to.equal(
          201,
        );
      }

      const refused = await send(alice!, chat.body.id, "one too many");
      expectError(refused, 429, "RATE_LIMITED");
      const retryAfter = Number(refused.headers.get("retry-after"));
      expect(retryAfter).to.be.a("number").within(1, 3600);
      expect(Number.isInteger(retryAfter)).to.equal(true);

      const fromBob = await send(bob!, chat.body.id, "bob is not limited");
      expect(fromBob.status).to.equal(201);
      await b1.waitFor("message:new", () => true, 4);
      await settle();
      expect(b1.received("message:new").map((m) => m.text)).to.deep.equal([
        "ok 1",
        "ok 2",
        "ok 3",
        "bob is not limited",
      ]);
      const history = await bob!.api.get<Msg[]>(`/history/${chat.body.id}`);
      expect(seqs(history)).to.deep.equal([1, 2, 3, 4]);
    });

    it("when a user at the limit resends a stored client_id, the answer is the stored message, not RATE_LIMITED", async () => {
      const [alice, bob] = await newUsers(limited.url, 2, "rate");
      const chat = await alice!.api.post("/chats", {
        type: "private",
        user_id: bob!.id,
      });
      for (let i = 1; i <= 3; i++) {
        expect(
          (await send(alice!, chat.body.id, `ok ${i}`, `c-${i}`)).status,
        ).to.equal(201);
      }

      const retry = await send(alice!, chat.body.id, "ok 3", "c-3");
      expect(retry.status, JSON.stringify(retry.body)).to.equal(200);
      expect(retry.body).to.include({ seq: 3, client_id: "c-3" });
    });

    it("when a user sends a 4th message over the socket, the ack is ok:false RATE_LIMITED and nothing is stored", async () => {
      const [alice, bob] = await newUsers(limited.url, 2, "rate");
      const chat = await alice!.api.post("/chats", {
        type: "private",
        user_id: bob!.id,
      });
      const [a1, b1] = await Promise.all([
        devices.connect(limited.url, alice!.token),
        devices.connect(limited.url, bob!.token),
      ]);
      for (let i = 1; i <= 3; i++) {
        const ack = await a1.ask("message:send", {
          chat_id: chat.body.id,
          text: `ok ${i}`,
        });
        expect(ack.ok).to.equal(true);
      }

      const refused = await a1.ask("message:send", {
        chat_id: chat.body.id,
        text: "one too many",
      });
      expect(refused.ok).to.equal(false);
      expect(refused.error.code).to.equal("RATE_LIMITED");
      await b1.waitFor("message:new", () => true, 3);
      await settle();
      expect(b1.received("message:new")).to.have.length(3);
      const history = await bob!.api.get<Msg[]>(`/history/${chat.body.id}`);
      expect(history.body.map((m) => m.text)).to.deep.equal([
        "ok 1",
        "ok 2",
        "ok 3",
      ]);
    });
  });
});
