import { describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../src/core/index.ts";
import { getWorkflowRunById } from "../src/store/index.ts";
import { useTestDatabase } from "./support/db.ts";
import { runSteps } from "./support/factories.ts";
import { finished, startTs } from "./support/processes.ts";

const { db, url } = await useTestDatabase();

describe("runledger demo", () => {
  it("runs the sample workflow and batch against DATABASE_URL and exits 0 with plain output", async () => {
    const result = await finished(startTs("src/cli.ts", ["demo"], { DATABASE_URL: url }));
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    // stdout is a pipe, not a terminal: no cursor movement or line clearing.
    expect(result.stdout).not.toContain("\x1b[");
    expect(result.stdout).toContain("step persist SUCCEEDED");
    expect(result.stdout).toContain("jobs: 50/50 succeeded, 0 dead-lettered");
    const runId = /workflow ([0-9a-f-]{36}): SUCCEEDED in /.exec(result.stdout)?.[1];
    expect(runId).toBeDefined();
    expect((await getWorkflowRunById(db, runId!, ALL_ORGANIZATIONS))?.status).toBe("SUCCEEDED");
    const steps = await runSteps(db, runId!);
    expect(steps.map((s) => [s.stepKey, s.status])).toEqual([
      ["crawl", "SUCCEEDED"],
      ["classify", "SUCCEEDED"],
      ["score", "SUCCEEDED"],
      ["persist", "SUCCEEDED"],
    ]);
  });

  it("migrate reports an already migrated database as current", async () => {
    const result = await finished(startTs("src/cli.ts", ["migrate"], { DATABASE_URL: url }));
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toContain("runledger schema current: 0 applied now");
  });

  it("prints usage for an unknown command and exits 2", async () => {
    const result = await finished(startTs("src/cli.ts", ["nope"], { DATABASE_URL: url }));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("usage: runledger");
  });
});
