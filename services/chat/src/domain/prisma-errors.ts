/** True for a unique-constraint failure, from the client or a raw query. */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, meta, message } = error as {
    code?: unknown;
    meta?: { code?: unknown; driverAdapterError?: unknown };
    message?: unknown;
  };
  if (code === "P2002" || code === "23505" || meta?.code === "23505") {
    return true;
  }
  return typeof message === "string" && message.includes("23505");
}
