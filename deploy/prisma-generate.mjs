// Generates the Prisma client without Prisma's download server.
// `prisma generate` needs no schema engine, but the CLI looks for one before
// it starts; pointing it at any existing file lets generation run offline.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const env = { ...process.env };
env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath;
env.PRISMA_HIDE_UPDATE_MESSAGE = "1";
env.CHECKPOINT_DISABLE = "1";

const result = spawnSync(
  "npx",
  ["prisma", "generate", "--config", "prisma/prisma.config.ts"],
  { cwd: root, env, stdio: "inherit" },
);
process.exit(result.status ?? 1);
