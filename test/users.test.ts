import { randomBytes } from "node:crypto";
import { expect } from "chai";
import jwt from "jsonwebtoken";
import type { ChatNode } from "../services/chat/src/node.js";
import { Api, connect, newUser, type Reply } from "./support/clients.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { startTestNode, useTestNode } from "./support/node.js";

const JWT_SECRET = "users-test-secret-0123456789";
const PASSWORD = "correct horse battery";

/** A name and email no other test uses. */
function fresh(prefix = "u") {
  const name = `${prefix}_${randomBytes(4).toString("hex")}`;
  return { name, email: `${name}@example.test`, password: PASSWORD };
}

function expectError(reply: Reply, status: number, code: string): void {
  expect(reply.status, JSON.stringify(reply.body)).to.equal(status);
  expect(reply.body).to.have.keys("error");
  expect(reply.body.error.code).to.equal(code);
  expect(reply.body.error.message).to.be.a("string").with.length.above(0);
}

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

const FORM = { "content-type": "application/x-www-form-urlencoded" };

describe("users and tokens", () => {
  let db: TestDatabase;
  let node: ChatNode;
  let api: Api;

  before(async () => {
    db = await createTestDatabase();
    node = await startTestNode(db.url, { JWT_SECRET });
    api = new Api(node.url);
  });
  after(async () => {
    await node?.stop();
    await db?.drop();
  });

  describe("POST /users", () => {
    it("when someone registers, the answer is 201 with id, name, email and created_at and no password", async () => {
      const person = fresh();
      const res = await api.post("/users", person);

      expect(res.status).to.equal(201);
      expect(res.body).to.have.all.keys("id", "name", "email", "created_at");
      expect(res.body).to.include({ name: person.name, email: person.email });
      expect(res.body.id).to.be.a("number");
      expect(res.body.created_at).to.match(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
      );
      const raw = JSON.stringify(res.body).toLowerCase();
      expect(raw).not.to.contain("password");
      expect(raw).not.to.contain("scrypt");
    });

    it("when the email is given in capitals, it is stored in lower case", async () => {
      const person = fresh();
      const res = await api.post("/users", {
        ...person,
        email: person.email.toUpperCase(),
      });
      expect(res.status).to.equal(201);
      expect(res.body.email).to.equal(person.email);
    });

    it("when the name is taken, the answer is 409 CONFLICT", async () => {
      const first = fresh();
      expect((await api.post("/users", first)).status).to.equal(201);
      const res = await api.post("/users", { ...fresh(), name: first.name });
      expectError(res, 409, "CONFLICT");
      expect(res.body.error.message).to.contain("name");
    });

    it("when the email is taken in another case, the answer is 409 CONFLICT", async () => {
      const first = fresh();
      expect((await api.post("/users", first)).status).to.equal(201);
      const res = await api.post("/users", {
        ...fresh(),
        email: first.email.toUpperCase(),
      });
      expectError(res, 409, "CONFLICT");
      expect(res.body.error.message).to.contain("email");
    });

    it("when a field is bad, the answer is 400 VALIDATION naming it and nothing is stored", async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ ...fresh(), email: "not-an-email" }, "email"],
        [{ ...fresh(), email: undefined }, "email"],
        [{ ...fresh(), password: "7chars!" }, "password"],
        [{ ...fresh(), password: "p".repeat(129) }, "password"],
        [{ ...fresh(), password: 12345678 }, "password"],
        [{ ...fresh(), name: "" }, "name"],
        [{ ...fresh(), name: "   " }, "name"],
        [{ ...fresh(), name: "n".repeat(65) }, "name"],
        [{ ...fresh(), name: "nul\u0000name" }, "name"],
      ];
      const me = await loggedIn();
      for (const [body, field] of cases) {
        const res = await api.post("/users", body);
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, JSON.stringify(body)).to.contain(field);
        const name = String(body.name).replace("\u0000", "").slice(0, 64);
        if (name.trim()) {
          const search = await me.api.get(
            `/users?q=${encodeURIComponent(name)}`,
          );
          expect(search.body, `stored ${name}`).to.deep.equal([]);
        }
      }
    });

    it("when name and password are at their limits (64 and 8, 128 characters), registration succeeds", async () => {
      const name = `${"n".repeat(56)}${randomBytes(4).toString("hex")}`;
      expect(name).to.have.length(64);
      const a = await api.post("/users", {
        ...fresh(),
        name,
        password: "p".repeat(8),
      });
      expect(a.status, JSON.stringify(a.body)).to.equal(201);
      const b = await api.post("/users", {
        ...fresh(),
        password: "p".repeat(128),
      });
      expect(b.status, JSON.stringify(b.body)).to.equal(201);
    });

    it("when the body is missing, the answer is 400 VALIDATION naming the body", async () => {
      const res = await api.request<any>("POST", "/users");
      expectError(res, 400, "VALIDATION");
      expect(res.body.error.message).to.contain("body");
    });

    it("when the JSON is malformed, the answer is 400 VALIDATION", async () => {
      const res = await api.request<any>("POST", "/users", '{"name": "x",', {
        "content-type": "application/json",
      });
      expectError(res, 400, "VALIDATION");
      expect(res.body.error.message).to.contain("body");
    });

    it("when the body is over 64 KiB, the answer is 413 PAYLOAD_TOO_LARGE in the error shape", async () => {
      const res = await api.post("/users", {
        ...fresh(),
        padding: "x".repeat(70 * 1024),
      });
      expectError(res, 413, "PAYLOAD_TOO_LARGE");
    });

    it("when the name is only zero-width or format characters, the answer is 400 VALIDATION naming name and nothing is stored", async () => {
      for (const name of [
        "\u200b",
        "\u2060",
        "\ufeff",
        "\u200b\u2060 \ufeff",
      ]) {
        const res = await api.post("/users", { ...fresh(), name });
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, JSON.stringify(name)).to.contain("name");
        const login = await api.post("/token", {
          username: name,
          password: PASSWORD,
        });
        expectError(login, 401, "UNAUTHORIZED");
      }
    });

    it("when the JSON body declares a charset other than UTF-8, the answer is 415 or 400 in the error shape, not a server failure", async () => {
      const res = await api.request<any>(
        "POST",
        "/users",
        JSON.stringify(fresh()),
        { "content-type": "application/json; charset=latin1" },
      );
      expect(res.status, JSON.stringify(res.body)).to.be.oneOf([400, 415]);
      expect(res.body).to.have.keys("error");
      expect(res.body.error.message).to.be.a("string").with.length.above(0);
    });

    it("when the body says gzip but is not gzip, the answer is 400 in the error shape, not a server failure", async () => {
      const person = fresh();
      for (const encoding of ["gzip", "deflate"]) {
        const res = await api.request<any>(
          "POST",
          "/users",
          JSON.stringify(person),
          {
            "content-type": "application/json",
            "content-encoding": encoding,
          },
        );
        expect(res.status, JSON.stringify(res.body)).to.be.within(400, 499);
        expect(res.body).to.have.keys("error");
      }
      const login = await api.post("/token", {
        username: person.name,
        password: PASSWORD,
      });
      expectError(login, 401, "UNAUTHORIZED");
    });

    it("when a name contains @, the person can still log in by name (or the name is refused)", async () => {
      const person = fresh();
      const name = `at@${person.name}`;
      const created = await api.post("/users", { ...person, name });
      if (created.status === 400) {
        expect(created.body.error.message).to.contain("name");
        return;
      }
      expect(created.status).to.equal(201);
      const login = await api.post("/token", {
        username: name,
        password: PASSWORD,
      });
      expect(login.status, JSON.stringify(login.body)).to.equal(200);
    });
  });

  describe("POST /token", () => {
    let person: ReturnType<typeof fresh>;
    let id: number;

    before(async () => {
      person = fresh("login");
      id = (await api.post("/users", person)).body.id;
    });

    async function whoIs(reply: Reply): Promise<number> {
      expect(reply.status, JSON.stringify(reply.body)).to.equal(200);
      expect(reply.body).to.have.all.keys(
        "access_token",
        "token_type",
        "expires_in",
      );
      expect(reply.body.token_type).to.equal("bearer");
      expect(reply.body.expires_in).to.be.a("number").above(0);
      const me = await api.as(reply.body.access_token).get("/users/me");
      expect(me.status).to.equal(200);
      return me.body.id;
    }

    it("when logging in with JSON by email or by name, the answer is a bearer token for that person", async () => {
      const byEmail = await api.post("/token", {
        username: person.email,
        password: PASSWORD,
      });
      expect(await whoIs(byEmail)).to.equal(id);
      const byUpperEmail = await api.post("/token", {
        username: person.email.toUpperCase(),
        password: PASSWORD,
      });
      expect(await whoIs(byUpperEmail)).to.equal(id);
      const byName = await api.post("/token", {
        username: person.name,
        password: PASSWORD,
      });
      expect(await whoIs(byName)).to.equal(id);
    });

    it("when logging in with the OAuth2 password form, by email or by name, the answer is a bearer token", async () => {
      for (const username of [person.email, person.name]) {
        const body = form({
          grant_type: "password",
          username,
          password: PASSWORD,
          scope: "",
        });
        const res = await api.request<any>("POST", "/token", body, FORM);
        expect(await whoIs(res)).to.equal(id);
      }
    });

    it("when the form names another grant type, the answer is 400 VALIDATION naming grant_type", async () => {
      const body = form({
        grant_type: "client_credentials",
        username: person.name,
        password: PASSWORD,
      });
      const res = await api.request<any>("POST", "/token", body, FORM);
      expectError(res, 400, "VALIDATION");
      expect(res.body.error.message).to.contain("grant_type");
    });

    it("when the username or password is missing, the answer is 400 VALIDATION naming it", async () => {
      for (const [body, field] of [
        [{ password: PASSWORD }, "username"],
        [{ username: person.name }, "password"],
      ] as const) {
        const res = await api.post("/token", body);
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message).to.contain(field);
      }
      const res = await api.request<any>(
        "POST",
        "/token",
        form({ username: person.name }),
        FORM,
      );
      expectError(res, 400, "VALIDATION");
      expect(res.body.error.message).to.contain("password");
    });

    it("when a form body is over 64 KiB, the answer is 413 PAYLOAD_TOO_LARGE", async () => {
      const body = form({
        username: person.name,
        password: PASSWORD,
        pad: "x".repeat(70 * 1024),
      });
      expectError(
        await api.request<any>("POST", "/token", body, FORM),
        413,
        "PAYLOAD_TOO_LARGE",
      );
    });

    it("when a form has more than 1000 fields, the answer is 413 PAYLOAD_TOO_LARGE; 1000 fields are read", async () => {
      const fields = (count: number) => {
        const body = new URLSearchParams({
          username: person.name,
          password: PASSWORD,
        });
        for (let i = 2; i < count; i++) body.append(`f${i}`, "x");
        return body.toString();
      };
      const tooMany = await api.request<any>(
        "POST",
        "/token",
        fields(1001),
        FORM,
      );
      expectError(tooMany, 413, "PAYLOAD_TOO_LARGE");
      const register = await api.request<any>(
        "POST",
        "/users",
        `${form(fresh())}&${fields(1001)}`,
        FORM,
      );
      expectError(register, 413, "PAYLOAD_TOO_LARGE");
      const enough = await api.request<any>(
        "POST",
        "/token",
        fields(1000),
        FORM,
      );
      expect(await whoIs(enough)).to.equal(id);
    });

    it("when the user is unknown or the password wrong, the answer is 401 with one message", async () => {
      const unknown = await api.post("/token", {
        username: "nobody@example.test",
        password: PASSWORD,
      });
      const unknownName = await api.post("/token", {
        username: "nobody_at_all",
        password: PASSWORD,
      });
      const wrong = await api.post("/token", {
        username: person.email,
        password: "wrong password",
      });
      const wrongForm = await api.request<any>(
        "POST",
        "/token",
        form({
          grant_type: "password",
          username: person.name,
          password: "wrong password",
        }),
        FORM,
      );
      for (const res of [unknown, unknownName, wrong, wrongForm]) {
        expectError(res, 401, "UNAUTHORIZED");
      }
      expect(
        new Set(
          [unknown, unknownName, wrong, wrongForm].map(
            (r) => r.body.error.message,
          ),
        ).size,
      ).to.equal(1);
    });

    it("when the username holds a NUL, the answer is a client error, not a server failure", async () => {
      const res = await api.post("/token", {
        username: "nul\u0000user",
        password: PASSWORD,
      });
      expect(res.status, JSON.stringify(res.body)).to.be.oneOf([400, 401]);
    });
  });

  describe("authentication of protected routes", () => {
    const PROTECTED: [string, string][] = [
      ["GET", "/users/me"],
      ["GET", "/users?q=a"],
      ["GET", "/chats"],
      ["POST", "/chats"],
      ["GET", "/chats/1"],
      ["POST", "/chats/1/members"],
      ["DELETE", "/chats/1/members/1"],
      ["POST", "/chats/1/messages"],
      ["GET", "/history/1"],
      ["POST", "/chats/1/read"],
    ];

    async function expectRefused(token: string | undefined, label: string) {
      for (const [method, path] of PROTECTED) {
        const client =
          token === undefined ? new Api(node.url) : new Api(node.url, token);
        const body = method === "POST" ? {} : undefined;
        const res = await client.request<any>(method, path, body);
        expect(res.status, `${label}: ${method} ${path}`).to.equal(401);
        expect(res.body.error.code).to.equal("UNAUTHORIZED");
      }
    }

    it("when no token is sent, every protected route answers 401 UNAUTHORIZED", async () => {
      await expectRefused(undefined, "missing");
    });

    it("when the token is garbage, every protected route answers 401 UNAUTHORIZED", async () => {
      await expectRefused("garbage.token.here", "garbage");
    });

    it("when the token has expired, every protected route answers 401 UNAUTHORIZED", async () => {
      const me = await loggedIn();
      const expired = jwt.sign(
        { exp: Math.floor(Date.now() / 1000) - 60 },
        JWT_SECRET,
        {
          algorithm: "HS256",
          subject: String(me.id),
        },
      );
      await expectRefused(expired, "expired");
    });

    it("when the token is signed with another secret or without one, every protected route answers 401", async () => {
      const me = await loggedIn();
      const forged = jwt.sign({}, "some-other-secret-0123456789", {
        algorithm: "HS256",
        subject: String(me.id),
        expiresIn: 600,
      });
      await expectRefused(forged, "forged");
      const unsigned = jwt.sign({}, "", {
        algorithm: "none",
        subject: String(me.id),
        expiresIn: 600,
      });
      await expectRefused(unsigned, "unsigned");
    });

    it("when a correctly signed token names a user that does not exist, the answer is a client error, not a server failure", async () => {
      const ghost = jwt.sign({}, JWT_SECRET, {
        algorithm: "HS256",
        subject: "999999",
        expiresIn: 600,
      });
      const client = new Api(node.url, ghost);
      const me = await loggedIn();
      for (const body of [
        { type: "group", name: "ghost town" },
        { type: "private", user_id: me.id },
      ]) {
        const res = await client.post("/chats", body);
        expect(res.status, JSON.stringify(res.body)).to.be.within(400, 499);
      }
      expectError(await client.get("/users/me"), 401, "UNAUTHORIZED");
    });

    it("when a correctly signed token's subject is not a plain decimal user id, REST answers 401 and the socket handshake says unauthorized", async () => {
      const me = await loggedIn();
      const subjects = ["2147483648", "1e0", "01", `0${me.id}`, `${me.id}e0`];
      subjects.push(`${me.id}.0`, ` ${me.id}`, "0x1", "-1", "0");
      for (const subject of subjects) {
        const token = jwt.sign({}, JWT_SECRET, {
          algorithm: "HS256",
          subject,
          expiresIn: 600,
        });
        const res = await new Api(node.url, token).get("/users/me");
        expectError(res, 401, "UNAUTHORIZED");
        const refused = await connect(node.url, token).then(
          (device) => {
            device.close();
            return `connected with subject ${subject}`;
          },
          (error: Error) => error.message,
        );
        expect(refused, subject).to.equal("unauthorized");
      }
      const own = jwt.sign({}, JWT_SECRET, {
        algorithm: "HS256",
        subject: String(me.id),
        expiresIn: 600,
      });
      expect((await new Api(node.url, own).get("/users/me")).status).to.equal(
        200,
      );
    });

    it("when the header uses another scheme, the answer is 401", async () => {
      const me = await loggedIn();
      const res = await api.request<any>("GET", "/users/me", undefined, {
        authorization: `Basic ${me.token}`,
      });
      expectError(res, 401, "UNAUTHORIZED");
    });

    it("when the token is valid, GET /users/me answers the person without a password", async () => {
      const me = await loggedIn();
      const res = await me.api.get("/users/me");
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({
        id: me.id,
        name: me.name,
        email: me.email,
        created_at: res.body.created_at,
      });
      expect(Date.parse(res.body.created_at)).to.be.closeTo(Date.now(), 60_000);
    });
  });

  describe("GET /users", () => {
    const tag = randomBytes(3).toString("hex");
    const names = [
      `Srch${tag}_anna`,
      `srch${tag}_Bob`,
      `SRCH${tag}_carl`,
      `other${tag}_srch${tag}`,
    ];
    let searcher: Awaited<ReturnType<typeof loggedIn>>;

    before(async () => {
      for (const name of names) {
        const res = await api.post("/users", { ...fresh(), name });
        expect(res.status).to.equal(201);
      }
      searcher = await loggedIn();
    });

    it("when searching by a prefix in any case, the people whose name starts with it are found as {id, name}", async () => {
      const res = await searcher.api.get(`/users?q=sRcH${tag}`);
      expect(res.status).to.equal(200);
      expect(res.body.map((u: { name: string }) => u.name)).to.have.members(
        names.slice(0, 3),
      );
      for (const user of res.body) expect(user).to.have.all.keys("id", "name");
    });

    it("when a limit is given, no more than that many are answered", async () => {
      const res = await searcher.api.get(`/users?q=srch${tag}&limit=2`);
      expect(res.status).to.equal(200);
      expect(res.body).to.have.length(2);
    });

    it("when the prefix holds LIKE wildcards, they match only themselves", async () => {
      const wild = await api.post("/users", { ...fresh(), name: `%_${tag}` });
      expect(wild.status).to.equal(201);
      const percent = await searcher.api.get(
        `/users?q=${encodeURIComponent("%")}&limit=100`,
      );
      expect(percent.status).to.equal(200);
      for (const user of percent.body) {
        expect(user.name.startsWith("%"), `${user.name} matched "%"`).to.equal(
          true,
        );
      }
      const underscore = await searcher.api.get(
        `/users?q=${encodeURIComponent(`_${tag}`)}`,
      );
      expect(underscore.body).to.deep.equal([]);
    });

    it("when the limit is 0, 101 or not a number, the answer is 400 VALIDATION naming limit", async () => {
      for (const limit of ["0", "101", "ten"]) {
        const res = await searcher.api.get(`/users?q=a&limit=${limit}`);
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message).to.contain("limit");
      }
    });

    it("when the limit is not plain decimal (1e1, 0x10, 05), the answer is 400 naming limit; an empty limit takes the default", async () => {
      for (const limit of ["1e1", "0x10", "05", "2.0", "%202"]) {
        const res = await searcher.api.get(
          `/users?q=srch${tag}&limit=${limit}`,
        );
        expectError(res, 400, "VALIDATION");
        expect(res.body.error.message, limit).to.contain("limit");
      }
      const empty = await searcher.api.get(`/users?q=srch${tag}&limit=`);
      expect(empty.status).to.equal(200);
      expect(empty.body).to.have.length(3);
    });

    it("when the prefix holds a NUL, the answer is a client error, not a server failure", async () => {
      const res = await searcher.api.get("/users?q=a%00");
      expect(res.status, JSON.stringify(res.body)).to.be.within(400, 499);
    });
  });

  function loggedIn() {
    return newUser(node.url, "auth");
  }
});

describe("log-in attempts", () => {
  const ctx = useTestNode({ LOGIN_ATTEMPTS: "3", LOGIN_WINDOW_MS: "60000" });

  it("when one name is tried past LOGIN_ATTEMPTS from one address, the answer is 429 RATE_LIMITED with Retry-After, and other names still log in", async () => {
    const api = new Api(ctx.node.url);
    const target = fresh("locked");
    expect((await api.post("/users", target)).status).to.equal(201);
    for (let i = 0; i < 3; i++) {
      const wrong = await api.post("/token", {
        username: target.name,
        password: "not the password",
      });
      expectError(wrong, 401, "UNAUTHORIZED");
    }

    const refused = await api.post("/token", {
      username: target.name,
      password: target.password,
    });
    expectError(refused, 429, "RATE_LIMITED");
    expect(Number(refused.headers.get("retry-after"))).to.be.within(1, 60);

    const other = fresh("free");
    await api.post("/users", other);
    const login = await api.post("/token", {
      username: other.email,
      password: other.password,
    });
    expect(login.status).to.equal(200);
  });
});
