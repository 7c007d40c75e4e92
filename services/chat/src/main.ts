import { hostname } from "node:os";
import { ConfigError, loadConfig, usesDevSecret } from "./config.js";
import { createLogger } from "./logger.js";
import { startNode } from "./node.js";

/** `npm start`: one chat node, configured from the environment. */
let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}

const nodeId = config.NODE_ID ?? `${hostname()}-${process.pid}`;
const log = createLogger(config.LOG_LEVEL, nodeId);

process.on("unhandledRejection", (reason) => {
  log.error("unhandled rejection", { error: reason });
});

const node = await startNode(config, log, nodeId).catch((error: unknown) => {
  log.error("start failed", {
    error: error instanceof Error ? error.message : error,
  });
  process.exit(1);
});

log.info("listening", {
  url: node.url,
  database: config.DATABASE_URL ? "postgresql" : "embedded",
  rooms: config.REDIS_URL ? "redis" : "in-memory",
});
if (usesDevSecret(config)) {
  log.warn(
    "JWT_SECRET is the published development default: anyone can sign tokens; set your own before serving others",
  );
}
if (!config.DATABASE_URL) {
  log.info(
    `embedded mode: PGlite database in ${config.PGLITE_DIR}, in-memory rooms; set DATABASE_URL and REDIS_URL to cluster`,
  );
}

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info("draining", { signal });
    const deadline = setTimeout(() => {
      log.error("drain took too long; exiting");
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS + 2_000);
    node.stop().then(
      () => {
        clearTimeout(deadline);
        log.info("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        log.error("stop failed", { error });
        process.exit(1);
      },
    );
  });
}
