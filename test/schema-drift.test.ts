import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, run } from "./support/processes.ts";

// drizzle-kit reads its config relative to the working directory; generate into a scratch copy
// of drizzle/ so a drift shows up as a new migration file there, never in the real folder.
const scratch = mkdtempSync(join(tmpdir(), "runledger-drift-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("drizzle/ matches src/store/schema", () => {
  it("generates no new migration from the schema", async () => {
    const out = join(scratch, "drizzle");
    cpSync(join(ROOT, "drizzle"), out, { recursive: true });
    const before = readdirSync(out).sort();
    const config = join(scratch, "drizzle.config.mjs");
    writeFileSync(
      config,
      `export default ${JSON.stringify({
        dialect: "postgresql",
        schema: relative(scratch, join(ROOT, "src/store/schema/index.ts")),
        out: "drizzle",
        schemaFilter: ["runledger"],
        migrations: { schema: "runledger", table: "__drizzle_migrations" },
      })};\n`,
    );
    const generate = await run(
      process.execPath,
      [join(ROOT, "node_modules/drizzle-kit/bin.cjs"), "generate", "--config", config],
      {},
      scratch,
    );
    expect(generate.code, generate.stderr).toBe(0);
    expect(generate.stdout + generate.stderr).toContain("No schema changes");
    expect(readdirSync(out).sort()).toEqual(before);

    const check = await run(
      process.execPath,
      [join(ROOT, "node_modules/drizzle-kit/bin.cjs"), "check", "--config", config],
      {},
      scratch,
    );
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });
});
