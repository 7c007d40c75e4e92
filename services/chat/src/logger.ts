import winston from "winston";

export type Logger = winston.Logger;

/**
 * What a log line tells of an error: its name, message, code and stack,
 * and nothing else. Errors can carry what a client sent (body-parser keeps
 * the raw body, passwords included), so their other fields never reach
 * the log.
 */
function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const { code } = error as { code?: unknown };
  return {
    name: error.name,
    message: error.message,
    ...((typeof code === "string" || typeof code === "number") && { code }),
    stack: error.stack,
  };
}

const safeErrors = winston.format((info) => {
  if (info.error !== undefined) info.error = describeError(info.error);
  return info;
});

/**
 * JSON lines on stdout with level, time and node id. Callers add fields
 * (request id, socket id, user id, chat id, and `error`) rather than
 * pasting values into the message.
 */
export function createLogger(level: string, nodeId: string): Logger {
  return winston.createLogger({
    level,
    defaultMeta: { node: nodeId },
    format: winston.format.combine(
      safeErrors(),
      winston.format.timestamp(),
      winston.format.json(),
    ),
    transports: [new winston.transports.Console()],
  });
}

/**
 * A gate that opens at most once per `ms`: for warnings that would
 * otherwise repeat with every request while a dependency is down.
 */
export function oncePer(ms: number): () => boolean {
  let last = -Infinity;
  return () => {
    const now = Date.now();
    if (now - last < ms) return false;
    last = now;
    return true;
  };
}
