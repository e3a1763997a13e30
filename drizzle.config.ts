import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { Config } from "drizzle-kit";

// drizzle-kit loads this file with its own TypeScript loader, as CommonJS (where `__dirname`
// exists) or as ESM: either way the paths are resolved from this file, not from the working
// directory, so `--config node_modules/runledger/drizzle.config.ts` works from an app's root.
// They are handed over relative to the working directory because drizzle-kit's `generate` and
// `check` put "./" in front of `out`.
const here = typeof __dirname === "string" ? __dirname : dirname(fileURLToPath(import.meta.url));
const fromHere = (path: string) => relative(process.cwd(), join(here, path)) || ".";

export default {
  dialect: "postgresql",
  schema: fromHere("src/store/schema/index.ts"),
  out: fromHere("drizzle"),
  schemaFilter: ["runledger"],
  migrations: { schema: "runledger", table: "__drizzle_migrations" },
  dbCredentials: { url: process.env.DATABASE_URL ?? "" },
  strict: true,
  verbose: true,
} satisfies Config;
