import { expect } from "chai";
import type { ChatNode } from "../services/chat/src/node.js";
import { Api, newUsers, type Reply, type TestUser } from "./support/clients.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { startTestNode } from "./support/node.js";

/** The REST API of DESIGN.md section 6, as OpenAPI paths and methods. */
const API: [string, string][] = [
  ["/users", "post"],
  ["/token", "post"],
  ["/users/me", "get"],
  ["/users", "get"],
  ["/chats", "post"],
  ["/chats", "get"],
  ["/chats/{chat_id}", "get"],
  ["/chats/{chat_id}/members", "post"],
  ["/chats/{chat_id}/members/{user_id}", "delete"],
  ["/chats/{chat_id}/messages", "post"],
  ["/history/{chat_id}", "get"],
  ["/chats/{chat_id}/read", "post"],
];
const PUBLIC = new Set(["post /users", "post /token"]);

/** What a leaked stack trace or internal detail looks like. */
const LEAK =
  /\bat .+[(:]\d+|\.(ts|js):\d+|node_modules|stack|Prisma|SELECT|postgres/i;

describe("service endpoints", () => {
  let db: TestDatabase;
  let node: ChatNode;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    db = await createTestDatabase();
    node = await startTestNode(db.url);
    [alice, bob] = (await newUsers(node.url, 2, "svc")) as [TestUser, TestUser];
  });
  after(async () => {
    await node?.stop();
    await db?.drop();
  });

  it("when asked /healthz and /readyz, the node answers 200", async () => {
    const api = new Api(node.url);
    const health = await api.get("/healthz");
    expect(health.status).to.equal(200);
    expect(health.body.status).to.equal("ok");
    const ready = await api.get("/readyz");
    expect(ready.status).to.equal(200);
    expect(ready.body.status).to.equal("ready");
  });

  it("when asked /openapi.json, the answer is an OpenAPI 3 document with every REST path and the bearer scheme", async () => {
    const res = await new Api(node.url).get("/openapi.json");
    expect(res.status).to.equal(200);
    const doc = res.body;
    expect(doc.openapi).to.match(/^3\./);
    expect(doc.info.title).to.be.a("string").with.length.above(0);

    for (const [path, method] of API) {
      const operation = doc.paths?.[path]?.[method];
      expect(operation, `${method.toUpperCase()} ${path}`).to.be.an("object");
      const security = JSON.stringify(operation.security ?? doc.security ?? []);
      if (PUBLIC.has(`${method} ${path}`))
        expect(security, path).not.to.contain("bearer");
      else expect(security, `${method} ${path}`).to.contain("bearer");
    }
    const schemes = Object.values<{ type: string; scheme?: string }>(
      doc.components.securitySchemes,
    );
    expect(
      schemes.some(
        (s) => s.type === "http" && s.scheme?.toLowerCase() === "bearer",
      ),
    ).to.equal(true);
    const token = doc.paths["/token"].post.requestBody.content;
    expect(token).to.have.property("application/x-www-form-urlencoded");
    expect(token).to.have.property("application/json");
    const history = doc.paths["/history/{chat_id}"].get.parameters.map(
      (p: { name: string }) => p.name,
    );
    expect(history).to.include.members([
      "chat_id",
      "limit",
      "offset",
      "after",
      "before",
    ]);
  });

  it("when asked /openapi.json, the document lists /healthz and /readyz", async () => {
    const doc = (await new Api(node.url).get("/openapi.json")).body;
    for (const path of ["/healthz", "/readyz"]) {
      const operation = doc.paths?.[path]?.get;
      expect(operation, path).to.be.an("object");
      expect(operation.responses, path).to.have.property("200");
      expect(JSON.stringify(operation.security ?? [])).not.to.contain("bearer");
    }
    expect(doc.paths["/readyz"].get.responses).to.have.property("503");
  });

  it("when asked /docs/, the node serves the Swagger UI page", async () => {
    for (const path of ["/docs/", "/docs"]) {
      const res = await fetch(node.url + path, {
        signal: AbortSignal.timeout(5_000),
      });
      expect(res.status, path).to.equal(200);
      expect(res.headers.get("content-type")).to.contain("text/html");
      expect(await res.text()).to.contain("swagger-ui");
    }
  });

  it("when a route does not exist, the answer is 404 NOT_FOUND in the error shape", async () => {
    const anonymous = new Api(node.url);
    for (const reply of [
      await anonymous.get("/nowhere"),
      await anonymous.post("/nowhere", { a: 1 }),
      await alice.api.get("/chats/1/nothing"),
      await alice.api.request<any>("PUT", "/chats"),
    ]) {
      expect(reply.status).to.equal(404);
      expect(reply.body).to.have.all.keys("error");
      expect(reply.body.error.code).to.equal("NOT_FOUND");
      expect(reply.body.error.message).to.be.a("string").with.length.above(0);
    }
  });

  it("when any request is answered, success or error, the response carries X-Node-Id", async () => {
    const anonymous = new Api(node.url);
    const chat = await alice.api.post("/chats", {
      type: "group",
      name: "hdr",
      member_ids: [bob.id],
    });
    const replies: [string, Headers][] = [];
    const keep = (label: string, reply: Reply) =>
      replies.push([label, reply.headers]);

    keep("healthz", await anonymous.get("/healthz"));
    keep("readyz", await anonymous.get("/readyz"));
    keep("openapi", await anonymous.get("/openapi.json"));
    keep("201", chat);
    keep("200", await alice.api.get("/chats"));
    keep(
      "204",
      await bob.api.delete(`/chats/${chat.body.id}/members/${bob.id}`),
    );
    keep("400", await anonymous.post("/users", { name: "" }));
    keep("401", await anonymous.get("/users/me"));
    keep("404", await anonymous.get("/nowhere"));
    keep("413", await anonymous.post("/users", { pad: "x".repeat(70_000) }));
    const docs = await fetch(`${node.url}/docs/`, {
      signal: AbortSignal.timeout(5_000),
    });
    await docs.text();
    replies.push(["docs", docs.headers]);

    for (const [label, headers] of replies) {
      expect(headers.get("x-node-id"), label).to.equal("test-node");
    }
  });

  describe("CORS", () => {
    const ORIGIN = "http://a.test";

    /** A browser's CORS preflight; its body, if any, is not JSON. */
    async function preflight(url: string, origin: string, path = "/chats") {
      const res = await fetch(url + path, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type",
        },
        signal: AbortSignal.timeout(5_000),
      });
      await res.text();
      return res;
    }

    it("when a browser on another origin sends a preflight, the answer is 204 allowing that origin, the methods and the headers", async () => {
      for (const path of ["/chats", "/token", "/history/1", "/nowhere"]) {
        const res = await preflight(node.url, ORIGIN, path);
        expect(res.status, path).to.equal(204);
        const allow = (name: string) => res.headers.get(name) ?? "";
        expect(allow("access-control-allow-origin")).to.be.oneOf([ORIGIN, "*"]);
        for (const method of ["GET", "POST", "DELETE"]) {
          expect(allow("access-control-allow-methods")).to.contain(method);
        }
        for (const header of ["authorization", "content-type"]) {
          expect(
            allow("access-control-allow-headers").toLowerCase(),
          ).to.contain(header);
        }
      }
    });

    it("when a browser on another origin sends a GET or a failing POST, the answer allows that origin", async () => {
      const replies = [
        await alice.api.request<any>("GET", "/chats", undefined, {
          origin: ORIGIN,
        }),
        await new Api(node.url).request<any>(
          "POST",
          "/users",
          {},
          {
            origin: ORIGIN,
          },
        ),
      ];
      expect(replies.map((r) => r.status)).to.deep.equal([200, 400]);
      for (const reply of replies) {
        expect(reply.headers.get("access-control-allow-origin")).to.be.oneOf([
          ORIGIN,
          "*",
        ]);
      }
    });

    it("when CORS_ORIGIN names one origin, a request from another gets no Access-Control-Allow-Origin", async () => {
      const strict = await startTestNode(db.url, { CORS_ORIGIN: ORIGIN });
      try {
        const other = "http://b.test";
        const refused = [
          await preflight(strict.url, other),
          await new Api(strict.url, alice.token).request<any>(
            "GET",
            "/chats",
            undefined,
            { origin: other },
          ),
        ];
        for (const reply of refused) {
          expect(reply.headers.get("access-control-allow-origin")).to.equal(
            null,
          );
        }
        const allowed = await new Api(strict.url, alice.token).request<any>(
          "GET",
          "/chats",
          undefined,
          { origin: ORIGIN },
        );
        expect(allowed.status).to.equal(200);
        expect(allowed.headers.get("access-control-allow-origin")).to.equal(
          ORIGIN,
        );
        const allowedPreflight = await preflight(strict.url, ORIGIN);
        expect(
          allowedPreflight.headers.get("access-control-allow-origin"),
        ).to.equal(ORIGIN);
      } finally {
        await strict.stop();
      }
    });
  });

  it("when requests fail in any way, no error body carries a stack trace or internals", async () => {
    const anonymous = new Api(node.url);
    const group = await alice.api.post("/chats", {
      type: "group",
      name: "errs",
    });
    const failures: Reply[] = [
      await anonymous.post("/users", { name: 1, email: 2, password: 3 }),
      await anonymous.request<any>("POST", "/users", "{not json", {
        "content-type": "application/json",
      }),
      await anonymous.post("/users", { pad: "x".repeat(70_000) }),
      await anonymous.post("/users", {
        name: alice.name,
        email: alice.email,
        password: "long enough",
      }),
      await anonymous.post("/token", {
        username: alice.email,
        password: "wrong password",
      }),
      await anonymous.request<any>("GET", "/chats", undefined, {
        authorization: "Bearer x.y.z",
      }),
      await bob.api.post(`/chats/${group.body.id}/members`, {
        user_id: bob.id,
      }),
      await bob.api.get(`/history/${group.body.id}`),
      await alice.api.get("/history/abc?limit=-5"),
      // A seq past what PostgreSQL's integer holds reaches the database.
      await alice.api.get(`/history/${group.body.id}?after=99999999999`),
    ];
    const statuses = failures.map((f) => f.status);
    expect(statuses.every((s) => s >= 400)).to.equal(true);
    expect(statuses).to.include.members([400, 401, 404, 409, 413]);
    for (const reply of failures) {
      const raw = JSON.stringify(reply.body);
      expect(reply.body).to.have.all.keys("error");
      expect(Object.keys(reply.body.error)).to.satisfy((keys: string[]) =>
        keys.every((k) => ["code", "message", "details"].includes(k)),
      );
      expect(raw, raw).not.to.match(LEAK);
    }
  });
});
