import { expect } from "chai";
import {
  newUsers,
  type Reply,
  settle,
  type TestUser,
  WAIT_MS,
} from "./support/clients.js";
import { useTestNode } from "./support/node.js";

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const MISSING_ID = 2_000_000_000;

function expectError(reply: Reply, status: number, code: string): void {
  expect(reply.status, JSON.stringify(reply.body)).to.equal(status);
  expect(reply.body.error.code).to.equal(code);
  expect(reply.body.error.message).to.be.a("string").with.length.above(0);
}

/** Polls `probe` until it answers `expected`; fails after WAIT_MS. */
async function eventually(probe: () => Promise<unknown>, expected: unknown) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const actual = await probe();
    try {
      expect(actual).to.deep.equal(expected);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await settle(25);
  }
}

function roles(chat: { members: { user_id: number; role: string }[] }) {
  return Object.fromEntries(chat.members.map((m) => [m.user_id, m.role]));
}

describe("chats and members", () => {
  const ctx = useTestNode();
  const { devices } = ctx;

  const people = (count: number) => newUsers(ctx.node.url, count, "chat");
  const connect = (user: TestUser) => devices.connect(ctx.node.url, user.token);

  async function group(owner: TestUser, members: TestUser[], name = "team") {
    const res = await owner.api.post("/chats", {
      type: "group",
      name,
      member_ids: members.map((m) => m.id),
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    return res.body;
  }

  describe("private chats", () => {
    it("when a private chat is opened, the answer is 201 with the Chat shape and both members", async () => {
      const [alice, bob] = await people(2);
      const res = await alice!.api.post("/chats", {
        type: "private",
        user_id: bob!.id,
      });

      expect(res.status).to.equal(201);
      expect(res.body).to.have.all.keys(
        "id",
        "type",
        "name",
        "creator_id",
        "created_at",
        "members",
        "last_message",
        "unread_count",
      );
      expect(res.body).to.include({
        type: "private",
        name: null,
        creator_id: alice!.id,
        last_message: null,
        unread_count: 0,
      });
      expect(res.body.created_at).to.match(ISO_MS);
      expect(res.body.members).to.have.length(2);
      for (const member of res.body.members) {
        expect(member).to.have.all.keys(
          "user_id",
          "name",
          "role",
          "last_read_seq",
          "online",
        );
        expect(member.last_read_seq).to.equal(0);
      }
      expect(
        res.body.members.map((m: { name: string }) => m.name),
      ).to.have.members([alice!.name, bob!.name]);
    });

    it("when the same pair opens it again from either side, the answer is 200 and the same chat", async () => {
      const [alice, bob] = await people(2);
      const first = await alice!.api.post("/chats", {
        type: "private",
        user_id: bob!.id,
      });
      const again = await alice!.api.post("/chats", {
        type: "private",
        user_id: bob!.id,
      });
      const fromBob = await bob!.api.post("/chats", {
        type: "private",
        user_id: alice!.id,
      });

      expect(first.status).to.equal(201);
      expect(again.status).to.equal(200);
      expect(fromBob.status).to.equal(200);
      expect(again.body.id).to.equal(first.body.id);
      expect(fromBob.body.id).to.equal(first.body.id);
      const list = await alice!.api.get("/chats");
      expect(
        list.body.filter((c: { type: string }) => c.type === "private"),
      ).to.have.length(1);
    });

    it("when both people open the chat at the same moment, one chat exists and one answer is 201", async () => {
      const [alice, bob] = await people(2);
      const [a1, b1] = await Promise.all([
        devices.connect(ctx.node.url, alice!.token),
        devices.connect(ctx.node.url, bob!.token),
      ]);
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          i % 2
            ? alice!.api.post("/chats", { type: "private", user_id: bob!.id })
            : bob!.api.post("/chats", { type: "private", user_id: alice!.id }),
        ),
      );

      expect(answers.map((a) => a.status).sort()).to.deep.equal([
        200, 200, 200, 200, 200, 201,
      ]);
      expect(new Set(answers.map((a) => a.body.id)).size).to.equal(1);
      await settle();
      expect(a1.received("chat:updated")).to.have.length(1);
      expect(b1.received("chat:updated")).to.have.length(1);
      const list = await bob!.api.get("/chats");
      expect(list.body).to.have.length(1);
    });

    it("when someone opens a private chat with themselves, the answer is 400 VALIDATION naming user_id", async () => {
      const [alice] = await people(1);
      const res = await alice!.api.post("/chats", {
        type: "private",
        user_id: alice!.id,
      });
      expectError(res, 400, "VALIDATION");
      expect(res.body.error.message).to.contain("user_id");
      expect((await alice!.api.get("/chats")).body).to.deep.equal([]);
    });

    it("when the other user does not exist, the answer is 404 NOT_FOUND", async () => {
      const [alice] = await people(1);
      const res = await alice!.api.post("/chats", {
        type: "private",
        user_id: MISSING_ID,
      });
      expectError(res, 404, "NOT_FOUND");
    });

    it("when the body is bad, the answer is 400 VALIDATION naming the field", async () => {
      const [alice] = await people(1);
      const cases: [unknown, string][] = [
        [{ type: "private" }, "user_id"],
        [{ type: "private", user_id: "bob" }, "user_id"],
        [{ type: "channel", user_id: 1 }, "type"],
        [{ user_id: 1 }, "type"],
      ];
      for (const [body, field] of cases) {
        const res = await alice!.api.post("/chats", body);
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, JSON.stringify(body)).to.contain(field);
      }
    });

    it('when an id in the body is not a JSON number (true, "2", [2]), the answer is 400 VALIDATION naming it and nothing is created', async () => {
      const [alice, bob] = await people(2);
      const cases: [unknown, string][] = [
        [{ type: "private", user_id: true }, "user_id"],
        [{ type: "private", user_id: String(bob!.id) }, "user_id"],
        [{ type: "private", user_id: [bob!.id] }, "user_id"],
        [{ type: "private", user_id: `${bob!.id}.0` }, "user_id"],
        [
          { type: "group", name: "g", member_ids: [String(bob!.id)] },
          "member_ids",
        ],
        [{ type: "group", name: "g", member_ids: [[bob!.id]] }, "member_ids"],
        [{ type: "group", name: "g", member_ids: [true] }, "member_ids"],
      ];
      for (const [body, field] of cases) {
        const res = await alice!.api.post("/chats", body);
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, JSON.stringify(body)).to.contain(field);
      }
      expect((await alice!.api.get("/chats")).body).to.deep.equal([]);
      expect((await bob!.api.get("/chats")).body).to.deep.equal([]);
    });
  });

  describe("groups", () => {
    it("when a group is created, the answer is 201 with its name, the creator as owner and the members", async () => {
      const [owner, m1, m2] = await people(3);
      const res = await owner!.api.post("/chats", {
        type: "group",
        name: "  Weekend plans  ",
        member_ids: [m1!.id, m2!.id, m1!.id, owner!.id],
      });

      expect(res.status).to.equal(201);
      expect(res.body).to.include({
        type: "group",
        name: "Weekend plans",
        creator_id: owner!.id,
      });
      expect(roles(res.body)).to.deep.equal({
        [owner!.id]: "owner",
        [m1!.id]: "member",
        [m2!.id]: "member",
      });
      expect(res.body.members[0].user_id).to.equal(owner!.id);
    });

    it("when a group has no other members, it is created with the owner alone", async () => {
      const [owner] = await people(1);
      const res = await owner!.api.post("/chats", {
        type: "group",
        name: "solo",
      });
      expect(res.status).to.equal(201);
      expect(roles(res.body)).to.deep.equal({ [owner!.id]: "owner" });
    });

    it("when the group name is missing, blank or over 128 characters, the answer is 400 VALIDATION naming name", async () => {
      const [owner, m1] = await people(2);
      for (const name of [undefined, "", "   ", "g".repeat(129), 42]) {
        const res = await owner!.api.post("/chats", {
          type: "group",
          name,
          member_ids: [m1!.id],
        });
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, String(name)).to.contain("name");
      }
      const longest = await owner!.api.post("/chats", {
        type: "group",
        name: "g".repeat(128),
      });
      expect(longest.status).to.equal(201);
      expect((await m1!.api.get("/chats")).body).to.deep.equal([]);
    });

    it("when the group name is only zero-width or format characters, the answer is 400 VALIDATION naming name and no group is made", async () => {
      const [owner] = await people(1);
      for (const name of [
        "\u200b",
        "\u2060",
        "\ufeff",
        "\u200b \u2060\ufeff",
      ]) {
        const res = await owner!.api.post("/chats", { type: "group", name });
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, JSON.stringify(name)).to.contain("name");
      }
      expect((await owner!.api.get("/chats")).body).to.deep.equal([]);
    });

    it("when a listed member does not exist, the answer is 404 and no group is made", async () => {
      const [owner, m1] = await people(2);
      const res = await owner!.api.post("/chats", {
        type: "group",
        name: "ghosts",
        member_ids: [m1!.id, MISSING_ID],
      });
      expectError(res, 404, "NOT_FOUND");
      expect((await owner!.api.get("/chats")).body).to.deep.equal([]);
    });
  });

  describe("listing and reading chats", () => {
    it("when a message arrives in an older chat, it moves first, with its last_message and unread_count", async () => {
      const [me, bob, carol] = await people(3);
      const withBob = await me!.api.post("/chats", {
        type: "private",
        user_id: bob!.id,
      });
      const withCarol = await me!.api.post("/chats", {
        type: "private",
        user_id: carol!.id,
      });
      const trio = await group(me!, [bob!, carol!]);

      let list = await me!.api.get("/chats");
      expect(list.body.map((c: { id: number }) => c.id)).to.deep.equal([
        trio.id,
        withCarol.body.id,
        withBob.body.id,
      ]);

      // Activity times have millisecond precision: keep them apart.
      await settle(5);
      await bob!.api.post(`/chats/${withBob.body.id}/messages`, {
        text: "one",
      });
      await bob!.api.post(`/chats/${withBob.body.id}/messages`, {
        text: "two",
      });
      list = await me!.api.get("/chats");
      expect(list.body.map((c: { id: number }) => c.id)).to.deep.equal([
        withBob.body.id,
        trio.id,
        withCarol.body.id,
      ]);
      const [first] = list.body;
      expect(first.unread_count).to.equal(2);
      expect(first.last_message).to.include({
        text: "two",
        seq: 2,
        sender_id: bob!.id,
        is_read: false,
      });
      expect(list.body[1].last_message).to.equal(null);
      expect(list.body[1].unread_count).to.equal(0);

      await settle(5);
      await carol!.api.post(`/chats/${withCarol.body.id}/messages`, {
        text: "three",
      });
      list = await me!.api.get("/chats");
      expect(list.body[0].id).to.equal(withCarol.body.id);

      const bobs = await bob!.api.get("/chats");
      expect(bobs.body.map((c: { id: number }) => c.id)).to.deep.equal([
        withBob.body.id,
        trio.id,
      ]);
      expect(bobs.body[0].unread_count).to.equal(0);
    });

    it("when a member has a socket open, the chat lists them online, and offline once it closes", async () => {
      const [alice, bob] = await people(2);
      const chat = await alice!.api.post("/chats", {
        type: "private",
        user_id: bob!.id,
      });
      const online = async () => {
        const res = await alice!.api.get(`/chats/${chat.body.id}`);
        return Object.fromEntries(
          res.body.members.map((m: { user_id: number; online: boolean }) => [
            m.user_id,
            m.online,
          ]),
        );
      };
      expect(await online()).to.deep.equal({
        [alice!.id]: false,
        [bob!.id]: false,
      });

      const device = await devices.connect(ctx.node.url, bob!.token);
      await eventually(online, {
        [alice!.id]: false,
        [bob!.id]: true,
      });
      device.close();
      await eventually(online, {
        [alice!.id]: false,
        [bob!.id]: false,
      });
    });

    it("when someone asks for a chat they are not in, or one that does not exist, the answer is 404", async () => {
      const [alice, bob, outsider] = await people(3);
      const chat = await alice!.api.post("/chats", {
        type: "private",
        user_id: bob!.id,
      });

      expect((await bob!.api.get(`/chats/${chat.body.id}`)).body.id).to.equal(
        chat.body.id,
      );
      expectError(
        await outsider!.api.get(`/chats/${chat.body.id}`),
        404,
        "NOT_FOUND",
      );
      expectError(
        await outsider!.api.get(`/chats/${MISSING_ID}`),
        404,
        "NOT_FOUND",
      );
      const bad = await outsider!.api.get("/chats/abc");
      expectError(bad, 400, "VALIDATION");
      expect(bad.body.error.message).to.contain("chat_id");
    });

    it("when an id in the path is not plain decimal (1e3, 0x10, %201, +1, 01, 11%20), the answer is 400 VALIDATION naming it", async () => {
      const [alice, bob] = await people(2);
      const chat = await alice!.api.post("/chats", {
        type: "private",
        user_id: bob!.id,
      });
      const id = chat.body.id as number;
      const spellings = ["1e3", "0x10", "%201", "+1", "01", "11%20"];
      spellings.push(`0${id}`, `+${id}`, `%20${id}`, `${id}%20`, `${id}e0`);
      for (const bad of spellings) {
        for (const [reply, field] of [
          [await alice!.api.get(`/chats/${bad}`), "chat_id"],
          [await alice!.api.get(`/history/${bad}`), "chat_id"],
          [
            await alice!.api.post(`/chats/${bad}/messages`, { text: "hi" }),
            "chat_id",
          ],
          [await alice!.api.post(`/chats/${bad}/read`, { seq: 1 }), "chat_id"],
          [await alice!.api.delete(`/chats/${id}/members/${bad}`), "user_id"],
        ] as const) {
          expectError(reply, 400, "VALIDATION");
          expect(reply.body.error.message, bad).to.contain(field);
        }
      }
      expect((await bob!.api.get(`/history/${id}`)).body).to.deep.equal([]);
    });
  });

  describe("adding members", () => {
    it("when the owner adds someone, the answer is 200 with the new member and every socket concerned hears chat:updated", async () => {
      const [owner, m1, newcomer] = await people(3);
      const chat = await group(owner!, [m1!]);
      const [ownerDevice, memberDevice, newDevice] = await Promise.all([
        connect(owner!),
        connect(m1!),
        connect(newcomer!),
      ]);

      const res = await owner!.api.post(`/chats/${chat.id}/members`, {
        user_id: newcomer!.id,
      });
      expect(res.status).to.equal(200);
      expect(roles(res.body)).to.deep.equal({
        [owner!.id]: "owner",
        [m1!.id]: "member",
        [newcomer!.id]: "member",
      });
      for (const device of [ownerDevice, memberDevice, newDevice]) {
        const [update] = await device.waitFor(
          "chat:updated",
          (c) => c.id === chat.id,
        );
        expect(update!.members.map((m) => m.user_id)).to.have.members([
          owner!.id,
          m1!.id,
          newcomer!.id,
        ]);
      }

      await m1!.api.post(`/chats/${chat.id}/messages`, { text: "welcome" });
      const [message] = await newDevice.waitFor(
        "message:new",
        (m) => m.chat_id === chat.id,
      );
      expect(message!.text).to.equal("welcome");
      await settle();
      expect(newDevice.received("chat:updated")).to.have.length(1);
      expect(newDevice.received("message:new")).to.have.length(1);
    });

    it("when someone already in the group is added again, nothing changes", async () => {
      const [owner, m1] = await people(2);
      const chat = await group(owner!, [m1!]);
      const device = await devices.connect(ctx.node.url, m1!.token);
      const res = await owner!.api.post(`/chats/${chat.id}/members`, {
        user_id: m1!.id,
      });
      expect(res.status).to.equal(200);
      expect(res.body.members).to.have.length(2);
      await settle();
      expect(device.received("chat:updated")).to.have.length(0);
    });

    it("when a member who is not the owner adds someone, the answer is 403 and nobody is added", async () => {
      const [owner, m1, other] = await people(3);
      const chat = await group(owner!, [m1!]);
      const res = await m1!.api.post(`/chats/${chat.id}/members`, {
        user_id: other!.id,
      });
      expectError(res, 403, "FORBIDDEN");
      expect(
        (await owner!.api.get(`/chats/${chat.id}`)).body.members,
      ).to.have.length(2);
    });

    it("when an outsider adds someone, the answer is 404", async () => {
      const [owner, m1, outsider] = await people(3);
      const chat = await group(owner!, [m1!]);
      const res = await outsider!.api.post(`/chats/${chat.id}/members`, {
        user_id: outsider!.id,
      });
      expectError(res, 404, "NOT_FOUND");
    });

    it("when someone is added to a private chat, the answer is 400", async () => {
      const [alice, bob, carol] = await people(3);
      const chat = await alice!.api.post("/chats", {
        type: "private",
        user_id: bob!.id,
      });
      const res = await alice!.api.post(`/chats/${chat.body.id}/members`, {
        user_id: carol!.id,
      });
      expectError(res, 400, "VALIDATION");
      expect(
        (await alice!.api.get(`/chats/${chat.body.id}`)).body.members,
      ).to.have.length(2);
    });

    it("when the added user does not exist, the answer is 404", async () => {
      const [owner] = await people(1);
      const chat = await group(owner!, []);
      const res = await owner!.api.post(`/chats/${chat.id}/members`, {
        user_id: MISSING_ID,
      });
      expectError(res, 404, "NOT_FOUND");
    });

    it('when the added user_id is not a JSON number (true, "2", [2]), the answer is 400 VALIDATION and nobody is added', async () => {
      const [owner, other] = await people(2);
      const chat = await group(owner!, []);
      for (const user_id of [true, String(other!.id), [other!.id]]) {
        const res = await owner!.api.post(`/chats/${chat.id}/members`, {
          user_id,
        });
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, JSON.stringify(user_id)).to.contain(
          "user_id",
        );
      }
      expect((await other!.api.get("/chats")).body).to.deep.equal([]);
    });

    it("when someone joins or rejoins a group that has messages, they start with unread_count 0 and last_read_seq at the chat's last seq", async () => {
      const [owner, newcomer] = await people(2);
      const chat = await group(owner!, []);
      const say = (text: string) =>
        owner!.api.post(`/chats/${chat.id}/messages`, { text });
      const startOf = async () => {
        const view = (await newcomer!.api.get(`/chats/${chat.id}`)).body;
        const me = view.members.find(
          (m: { user_id: number }) => m.user_id === newcomer!.id,
        );
        return { unread: view.unread_count, marker: me.last_read_seq };
      };
      for (const text of ["one", "two", "three"]) await say(text);

      const added = await owner!.api.post(`/chats/${chat.id}/members`, {
        user_id: newcomer!.id,
      });
      expect(added.status).to.equal(200);
      expect(await startOf()).to.deep.equal({ unread: 0, marker: 3 });
      const listed = (await newcomer!.api.get("/chats")).body;
      expect(listed[0].unread_count).to.equal(0);

      const left = await newcomer!.api.delete(
        `/chats/${chat.id}/members/${newcomer!.id}`,
      );
      expect(left.status).to.equal(204);
      for (const text of ["four", "five"]) await say(text);
      const readded = await owner!.api.post(`/chats/${chat.id}/members`, {
        user_id: newcomer!.id,
      });
      expect(readded.status).to.equal(200);
      expect(await startOf()).to.deep.equal({ unread: 0, marker: 5 });

      await say("six");
      expect(await startOf()).to.deep.equal({ unread: 1, marker: 5 });
    });
  });

  describe("removing members and leaving", () => {
    it("when the owner removes a member, the answer is 204, everyone concerned hears chat:updated and the removed socket hears no more messages", async () => {
      const [owner, stays, removed] = await people(3);
      const chat = await group(owner!, [stays!, removed!]);
      const [ownerDevice, staysDevice, removedDevice] = await Promise.all([
        connect(owner!),
        connect(stays!),
        connect(removed!),
      ]);

      const res = await owner!.api.delete(
        `/chats/${chat.id}/members/${removed!.id}`,
      );
      expect(res.status).to.equal(204);
      // The group's own creation may still be announced to these sockets:
      // wait for the update that comes of the removal.
      const withoutRemoved = (c: {
        id: number;
        members: { user_id: number }[];
      }) =>
        c.id === chat.id && c.members.every((m) => m.user_id !== removed!.id);
      for (const device of [ownerDevice, staysDevice, removedDevice]) {
        const [update] = await device.waitFor("chat:updated", withoutRemoved);
        expect(update!.members.map((m) => m.user_id)).to.have.members([
          owner!.id,
          stays!.id,
        ]);
      }

      await stays!.api.post(`/chats/${chat.id}/messages`, {
        text: "after you left",
      });
      await ownerDevice.waitFor("message:new", (m) => m.chat_id === chat.id);
      await settle();
      expect(removedDevice.received("message:new")).to.have.length(0);
      expectError(
        await removed!.api.get(`/chats/${chat.id}`),
        404,
        "NOT_FOUND",
      );
      expectError(
        await removed!.api.get(`/history/${chat.id}`),
        404,
        "NOT_FOUND",
      );
      const refused = await removedDevice.ask("message:send", {
        chat_id: chat.id,
        text: "still here?",
      });
      expect(refused.ok).to.equal(false);
      expect(refused.error.code).to.equal("NOT_FOUND");
    });

    it("when a member removes someone else, the answer is 403 and nobody is removed", async () => {
      const [owner, m1, m2] = await people(3);
      const chat = await group(owner!, [m1!, m2!]);
      for (const target of [m2!, owner!]) {
        const res = await m1!.api.delete(
          `/chats/${chat.id}/members/${target.id}`,
        );
        expectError(res, 403, "FORBIDDEN");
      }
      expect(
        (await owner!.api.get(`/chats/${chat.id}`)).body.members,
      ).to.have.length(3);
    });

    it("when a member leaves, the answer is 204 and the chat is gone from their list", async () => {
      const [owner, leaver] = await people(2);
      const chat = await group(owner!, [leaver!]);
      const device = await devices.connect(ctx.node.url, leaver!.token);
      const res = await leaver!.api.delete(
        `/chats/${chat.id}/members/${leaver!.id}`,
      );
      expect(res.status).to.equal(204);
      const [update] = await device.waitFor(
        "chat:updated",
        (c) => c.id === chat.id,
      );
      expect(update!.members.map((m) => m.user_id)).to.deep.equal([owner!.id]);
      expect((await leaver!.api.get("/chats")).body).to.deep.equal([]);
      const members = (await owner!.api.get(`/chats/${chat.id}`)).body.members;
      expect(members.map((m: { user_id: number }) => m.user_id)).to.deep.equal([
        owner!.id,
      ]);
    });

    it("when the owner leaves, the longest-standing member becomes owner", async () => {
      // The later joiner has the smaller id, so joining time must decide.
      const [owner, ...pair] = await people(3);
      const [later, earlier] = pair.sort((a, b) => a.id - b.id);
      const chat = await group(owner!, [earlier!]);
      await settle(20);
      const added = await owner!.api.post(`/chats/${chat.id}/members`, {
        user_id: later!.id,
      });
      expect(added.status).to.equal(200);

      const res = await owner!.api.delete(
        `/chats/${chat.id}/members/${owner!.id}`,
      );
      expect(res.status).to.equal(204);
      const after = await earlier!.api.get(`/chats/${chat.id}`);
      expect(roles(after.body)).to.deep.equal({
        [earlier!.id]: "owner",
        [later!.id]: "member",
      });
      const addBack = await earlier!.api.post(`/chats/${chat.id}/members`, {
        user_id: owner!.id,
      });
      expect(addBack.status).to.equal(200);
    });

    it("when someone tries to remove or leave a private chat, the answer is 400 and both stay", async () => {
      const [alice, bob] = await people(2);
      const chat = await alice!.api.post("/chats", {
        type: "private",
        user_id: bob!.id,
      });
      expectError(
        await alice!.api.delete(`/chats/${chat.body.id}/members/${alice!.id}`),
        400,
        "VALIDATION",
      );
      expectError(
        await alice!.api.delete(`/chats/${chat.body.id}/members/${bob!.id}`),
        400,
        "VALIDATION",
      );
      expect(
        (await bob!.api.get(`/chats/${chat.body.id}`)).body.members,
      ).to.have.length(2);
    });

    it("when the owner and their successor leave at the same moment, neither fails and the one left becomes owner", async () => {
      for (let round = 0; round < 10; round++) {
        const [owner, successor, last] = await people(3);
        const chat = await group(owner!, [successor!]);
        await settle(5);
        const added = await owner!.api.post(`/chats/${chat.id}/members`, {
          user_id: last!.id,
        });
        expect(added.status).to.equal(200);

        const answers = await Promise.all(
          [owner!, successor!].map((u) =>
            u.api.delete(`/chats/${chat.id}/members/${u.id}`),
          ),
        );
        for (const answer of answers) {
          expect(answer.status, JSON.stringify(answer.body)).to.equal(204);
        }
        const after = await last!.api.get(`/chats/${chat.id}`);
        expect(after.status).to.equal(200);
        expect(roles(after.body), `round ${round}`).to.deep.equal({
          [last!.id]: "owner",
        });
      }
    });

    it("when the owner removes someone who is not a member, the answer is 404", async () => {
      const [owner, stranger] = await people(2);
      const chat = await group(owner!, []);
      const res = await owner!.api.delete(
        `/chats/${chat.id}/members/${stranger!.id}`,
      );
      expectError(res, 404, "NOT_FOUND");
    });
  });
});
