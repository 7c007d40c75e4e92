// Prisma CLI configuration. The chat node itself never reads this file: it
// connects through a driver adapter (see services/chat/src/db/client.ts).
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "schema.prisma",
  migrations: { path: "migrations" },
  datasource: {
    url: process.env.DATABASE_URL ?? "postgresql://localhost:5432/windi",
  },
});
