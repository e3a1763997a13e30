import { sql } from "drizzle-orm";
import { expect, it } from "vitest";
import { QueryError, RunledgerError } from "../../src/core/index.ts";
import { translating } from "../../src/store/errors.ts";
import { useTestDatabase } from "../support/db.ts";

const { db } = await useTestDatabase({ max: 1 });

it("translates a driver error, giving the fallback code only to what nothing else explains", async () => {
  // 42601 (a syntax error) has no code of its own: db.query_failed, or the caller's fallback.
  const unexplained = () => db.execute(sql.raw("selec 1"));
  await expect(translating(unexplained)).rejects.toMatchObject({ code: "db.query_failed", sqlstate: "42601" });
  const failed = translating(unexplained, "schema.migration_failed");
  await expect(failed).rejects.toBeInstanceOf(QueryError);
  await expect(failed).rejects.toMatchObject({ code: "schema.migration_failed", sqlstate: "42601" });

  // A classified error keeps its code whatever the fallback.
  const divide = () => db.execute(sql`select 1 / 0`);
  await expect(translating(divide, "schema.migration_failed")).rejects.toMatchObject({
    code: "db.invalid_input",
    sqlstate: "22012",
  });
});

it("lets a RunledgerError thrown inside pass unchanged, and returns what the work returns", async () => {
  const own = new RunledgerError("job.not_found");
  await expect(translating(() => Promise.reject(own), "schema.migration_failed")).rejects.toBe(own);
  expect(await translating(async () => 42)).toBe(42);
});
