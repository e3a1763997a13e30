import { defineConfig } from "drizzle-kit";

/**
 * drizzle-kit configuration. `npm run db:generate` writes `drizzle/` from `src/store/schema`;
 * deploy pipelines may run `drizzle-kit migrate` with this file and get the same database and
 * journal as `migrate(db)`.
 */
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/store/schema/index.ts",
  out: "./drizzle",
  schemaFilter: ["runledger"],
  migrations: { schema: "runledger", table: "__drizzle_migrations" },
  dbCredentials: { url: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres" },
  strict: true,
  verbose: true,
});
