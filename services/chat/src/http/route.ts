import type { OpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
import type { Request, Router } from "express";
import type { Logger } from "../logger.js";
import { z } from "zod";
import { ErrorResponse } from "../contract/schemas.js";
import { AppError, fromZodError } from "../errors.js";

type Method = "get" | "post" | "delete";
type AnyObject = z.ZodType<object>;

export interface RouteInput<P, Q, B> {
  /** The caller, from the verified bearer token (0 on public routes). */
  userId: number;
  /** The client's address (behind nginx, from X-Forwarded-For). */
  client: string;
  /** The request's logger (it carries the request id). */
  log: Logger;
  params: P;
  query: Q;
  body: B;
}

export interface RouteSpec<
  P extends AnyObject,
  Q extends AnyObject,
  B extends z.ZodType,
> {
  method: Method;
  /** OpenAPI style, e.g. `/chats/{chat_id}`. */
  path: string;
  summary: string;
  tag: string;
  /** Needs a bearer token; true unless said otherwise. */
  auth?: boolean;
  params?: P;
  query?: Q;
  body?: B;
  /** Also accept `application/x-www-form-urlencoded` bodies. */
  form?: boolean;
  /** Success statuses and what they answer (no schema: no body). */
  responses: Record<number, { description: string; schema?: z.ZodType }>;
  /** Runs the use case; returns what to answer and what to announce. */
  handle: (
    input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>,
  ) => Promise<Answer>;
}

export interface Answer {
  status: number;
  body?: unknown;
  /** Tells sockets of the stored change; its failure is only logged. */
  announce?: () => Promise<void> | void;
}

export interface RouteContext {
  router: Router;
  registry: OpenAPIRegistry;
  /** Resolves the caller of an authenticated request. */
  authenticate: (req: Request) => number;
}

const ERRORS: Record<number, string> = {
  400: "Invalid input (VALIDATION)",
  401: "Missing, bad or expired token (UNAUTHORIZED)",
  404: "Not found, or not a member (NOT_FOUND)",
  413: "Body over 64 KiB (PAYLOAD_TOO_LARGE)",
};

function parse<T extends z.ZodType>(
  schema: T | undefined,
  value: unknown,
): z.output<T> {
  if (!schema) return undefined as z.output<T>;
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw fromZodError(parsed.error);
  return parsed.data;
}

/**
 * Declares one endpoint once: the same zod schemas validate the request
 * and describe it in the OpenAPI document.
 */
export function route<
  P extends AnyObject = z.ZodObject,
  Q extends AnyObject = z.ZodObject,
  B extends z.ZodType = z.ZodUndefined,
>(ctx: RouteContext, spec: RouteSpec<P, Q, B>): void {
  const auth = spec.auth ?? true;
  const expressPath = spec.path.replace(/\{(\w+)\}/g, ":$1");

  ctx.router[spec.method](expressPath, async (req, res) => {
    const userId = auth ? ctx.authenticate(req) : 0;
    if (spec.body && req.body === undefined) {
      throw new AppError("VALIDATION", "body: a JSON body is required");
    }
    const input = {
      userId,
      client: req.ip ?? "",
      log: res.locals.log as Logger,
      params: parse(spec.params, req.params),
      // `?limit=` means no limit given: take the default.
      query: parse(
        spec.query,
        Object.fromEntries(
          Object.entries(req.query).filter(([, value]) => value !== ""),
        ),
      ),
      body: parse(spec.body, req.body),
    };
    const { status, body, announce } = await spec.handle(input);
    // The change is stored: tell the sockets concerned before the caller,
    // so that a socket of theirs is in its new rooms by the time they hear;
    // a failure to tell is logged, and does not turn into an error.
    try {
      await announce?.();
    } catch (error) {
      input.log.warn("announcement failed", { error });
    }
    if (body === undefined) res.status(status).end();
    else res.status(status).json(body);
  });

  describeRoute(ctx.registry, spec, auth);
}

/** The route's entry in the OpenAPI document, from the same schemas. */
function describeRoute<
  P extends AnyObject,
  Q extends AnyObject,
  B extends z.ZodType,
>(registry: OpenAPIRegistry, spec: RouteSpec<P, Q, B>, auth: boolean): void {
  registry.registerPath({
    method: spec.method,
    path: spec.path,
    summary: spec.summary,
    tags: [spec.tag],
    ...(auth && { security: [{ bearer: [] }, { oauth2: [] }] }),
    request: {
      ...(spec.params && { params: spec.params as unknown as z.ZodObject }),
      ...(spec.query && { query: spec.query as unknown as z.ZodObject }),
      ...(spec.body && {
        body: {
          required: true,
          content: {
            "application/json": { schema: spec.body },
            ...(spec.form && {
              "application/x-www-form-urlencoded": { schema: spec.body },
            }),
          },
        },
      }),
    },
    responses: {
      ...Object.fromEntries(
        Object.entries(spec.responses).map(([status, r]) => [
          status,
          {
            description: r.description,
            ...(r.schema && {
              content: { "application/json": { schema: r.schema } },
            }),
          },
        ]),
      ),
      ...Object.fromEntries(
        Object.entries(ERRORS)
          .filter(([status]) => auth || status !== "401")
          .filter(([status]) => spec.body || status !== "413")
          .map(([status, description]) => [
            status,
            {
              description,
              content: { "application/json": { schema: ErrorResponse } },
            },
          ]),
      ),
    },
  });
}
