import { z } from "zod";

/** The error codes of the contract, with their HTTP statuses. */
export const ERROR_STATUS = {
  VALIDATION: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** The one error a client may see. Anything else becomes INTERNAL. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    /** Seconds to wait before retrying (RATE_LIMITED only). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = "AppError";
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export const notFound = (what: string): AppError =>
  new AppError("NOT_FOUND", `${what} not found`);

export const forbidden = (message: string): AppError =>
  new AppError("FORBIDDEN", message);

export const invalid = (field: string, message: string): AppError =>
  new AppError("VALIDATION", `${field}: ${message}`, [{ field, message }]);

/**
 * Turns a zod failure into VALIDATION naming each field; `whole` names the
 * input itself when it is the problem ("body", "payload").
 */
export function fromZodError(error: z.ZodError, whole = "body"): AppError {
  const details = error.issues.map((issue) => ({
    field: issue.path.join(".") || whole,
    message: issue.message,
  }));
  const summary = details.map((d) => `${d.field}: ${d.message}`).join("; ");
  return new AppError("VALIDATION", summary, details);
}

/**
 * Normalises anything thrown into an AppError. Unknown errors become
 * INTERNAL with a fixed message; the original is for the log only.
 */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof z.ZodError) return fromZodError(error);
  return new AppError("INTERNAL", "internal error");
}

export function errorBody(error: AppError): ErrorBody {
  const body: ErrorBody = { code: error.code, message: error.message };
  if (error.details !== undefined) body.details = error.details;
  return body;
}
