import { randomUUID } from "node:crypto";
import {
  OpenAPIRegistry,
  OpenApiGeneratorV3,
} from "@asteasolutions/zod-to-openapi";
import express, {
  type NextFunction,
  type Request,
  type Response,
} from "express";
import swaggerUi from "swagger-ui-express";
import { corsOrigins } from "../config.js";
import { AppError, errorBody, toAppError } from "../errors.js";
import type { Lifecycle } from "../lifecycle.js";
import type { Logger } from "../logger.js";
import type { Announcer } from "../realtime/announcer.js";
import { type Domain, registerRoutes } from "./routes.js";

export interface AppDeps {
  domain: Domain;
  announcer: Announcer;
  lifecycle: Lifecycle;
  log: Logger;
  nodeId: string;
  /** Allowed browser origins: "*" or a comma-separated list. */
  corsOrigin: string;
  /** Resolves when the node's database and Redis answer. */
  ready: () => Promise<void>;
}

const BODY_LIMIT = "64kb";

function bearerUser(req: Request, domain: Domain): number {
  const token = /^bearer (\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
  if (!token) throw new AppError("UNAUTHORIZED", "missing bearer token");
  return domain.tokens.verify(token).userId;
}

function registerHealth(registry: OpenAPIRegistry): void {
  for (const [path, summary] of [
    ["/healthz", "Alive"],
    ["/readyz", "Ready: database and Redis answer (else 503)"],
  ] as const) {
    registry.registerPath({
      method: "get",
      path,
      summary,
      tags: ["health"],
      responses: {
        200: { description: "Yes" },
        ...(path === "/readyz" && { 503: { description: "Not ready" } }),
      },
    });
  }
}

/** CORS for browsers on other origins, as Socket.IO allows them. */
function cors(setting: string): express.RequestHandler {
  const allowed = corsOrigins(setting);
  return (req, res, next) => {
    const origin = req.get("origin");
    if (origin && (allowed === true || allowed.includes(origin))) {
      res.setHeader("Access-Control-Allow-Origin", origin);
      res.setHeader("Vary", "Origin");
      res.setHeader(
        "Access-Control-Expose-Headers",
        "Retry-After, X-Request-Id, X-Node-Id",
      );
    }
    if (req.method !== "OPTIONS") return next();
    res.setHeader("Access-Control-Allow-Methods", "GET, POST, DELETE");
    res.setHeader(
      "Access-Control-Allow-Headers",
      "Authorization, Content-Type, X-Request-Id",
    );
    res.setHeader("Access-Control-Max-Age", "600");
    res.status(204).end();
  };
}

function buildOpenApi(registry: OpenAPIRegistry): object {
  registerHealth(registry);
  registry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
  });
  registry.registerComponent("securitySchemes", "oauth2", {
    type: "oauth2",
    flows: { password: { tokenUrl: "/token", scopes: {} } },
  });
  return new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: "3.0.3",
    info: {
      title: "WinDI Chat",
      version: "0.1.0",
      description:
        "Real-time chat. REST below; live events over Socket.IO at /socket.io (see README).",
    },
  });
}

/** The Express app: request context, docs, health, the API, errors. */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  // nginx on the same host or network sets X-Forwarded-For to the client's
  // address (nginx.conf); nodes are not meant to be reached around it.
  app.set("trust proxy", "loopback, uniquelocal");

  app.use((req, res, next) => {
    const requestId = req.get("x-request-id")?.slice(0, 64) ?? randomUUID();
    res.locals.log = deps.log.child({ request: requestId });
    res.setHeader("X-Request-Id", requestId);
    res.setHeader("X-Node-Id", deps.nodeId);
    res.on("finish", () => logRequest(req, res));
    next();
  });

  app.use(cors(deps.corsOrigin));

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok", node: deps.nodeId });
  });
  app.get("/readyz", async (_req, res) => {
    try {
      if (deps.lifecycle.draining) throw new Error("draining");
      await deps.ready();
      res.json({ status: "ready", node: deps.nodeId });
    } catch (error) {
      res.status(503).json({ status: "unavailable", reason: String(error) });
    }
  });

  // Everything below is work the node refuses while it drains.
  app.use((_req, _res, next) => {
    deps.lifecycle
      .run(
        () =>
          new Promise<void>((resolve) => {
            _res.on("close", resolve);
            next();
          }),
      )
      .catch(next);
  });
  app.use(express.json({ limit: BODY_LIMIT }));
  app.use(express.urlencoded({ extended: false, limit: BODY_LIMIT }));

  const registry = new OpenAPIRegistry();
  const router = express.Router();
  registerRoutes(
    {
      router,
      registry,
      authenticate: (req) => bearerUser(req, deps.domain),
    },
    deps.domain,
    deps.announcer,
  );
  const document = buildOpenApi(registry);
  app.get("/openapi.json", (_req, res) => {
    res.json(document);
  });
  app.use("/docs", swaggerUi.serve, swaggerUi.setup(document));
  app.use(router);

  app.use((req) => {
    throw new AppError("NOT_FOUND", `no route for ${req.method} ${req.path}`);
  });
  app.use(errorHandler);
  return app;
}

function logRequest(req: Request, res: Response): void {
  const log = res.locals.log as Logger;
  const fields = {
    method: req.method,
    path: req.path,
    status: res.statusCode,
  };
  // A node that is not ready says so on /readyz; that is not a failure.
  if (res.statusCode >= 500 && req.path !== "/readyz") {
    log.error("request failed", fields);
  } else if (res.statusCode >= 400 && req.path !== "/readyz") {
    log.info("request refused", fields);
  } else {
    log.debug("request", fields);
  }
}

/**
 * Errors of the body parsers carry the status a client caused (`expose`):
 * 413 for too large (or too many form fields), 400 and 415 for what cannot
 * be read. Their messages say nothing of the body, so they can be shown.
 */
function fromHttpError(error: unknown): AppError {
  const { status, expose, type } = error as {
    status?: unknown;
    expose?: unknown;
    type?: unknown;
  };
  if (expose !== true || typeof status !== "number") return toAppError(error);
  if (status === 413) {
    return new AppError("PAYLOAD_TOO_LARGE", `body is over ${BODY_LIMIT}`);
  }
  if (type === "entity.parse.failed") {
    return new AppError("VALIDATION", "body: malformed JSON");
  }
  return new AppError("VALIDATION", `body: ${(error as Error).message}`);
}

function errorHandler(
  error: unknown,
  _req: Request,
  res: Response,
  // Express tells error handlers by their four parameters.
  _next: NextFunction,
): void {
  const appError = fromHttpError(error);
  if (appError.code === "INTERNAL") {
    (res.locals.log as Logger).error("unhandled error", { error });
  }
  if (res.headersSent) return;
  if (appError.retryAfter !== undefined) {
    res.setHeader("Retry-After", String(appError.retryAfter));
  }
  res.status(appError.status).json({ error: errorBody(appError) });
}
