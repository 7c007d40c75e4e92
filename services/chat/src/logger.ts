import winston from "winston";

export type Logger = winston.Logger;

/**
 * JSON lines on stdout with level, time and node id. Callers add fields
 * (request id, socket id, user id, chat id) rather than pasting values into
 * the message.
 */
export function createLogger(level: string, nodeId: string): Logger {
  return winston.createLogger({
    level,
    defaultMeta: { node: nodeId },
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: true }),
      winston.format.json(),
    ),
    transports: [new winston.transports.Console()],
  });
}
