import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { BATCH_SIZE, frameLines, type Live, Progress, summaryLines } from "../src/cli/demo-view.ts";
import { ALL_ORGANIZATIONS } from "../src/core/index.ts";
import { getWorkflowRunById, type WorkflowStepRecord } from "../src/store/index.ts";
import { useTestDatabase } from "./support/db.ts";
import { runSteps } from "./support/factories.ts";
import { finished, ROOT, startTs } from "./support/processes.ts";

const { db, url } = await useTestDatabase();

/** `url` with another database name and, optionally, a password and query. */
function urlFor(database: string, options: { password?: string; query?: string } = {}): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  if (options.password !== undefined) parsed.password = options.password;
  if (options.query !== undefined) parsed.search = options.query;
  return parsed.toString();
}
const testDatabase = decodeURIComponent(new URL(url).pathname.slice(1));

describe("runledger demo", () => {
  it("runs the sample workflow and batch against DATABASE_URL and exits 0 with plain output", async () => {
    // The server trusts the connection, so any password will do; it must never be printed.
    const withPassword = urlFor(testDatabase, { password: "hunter2" });
    const result = await finished(startTs("src/cli.ts", ["demo"], { DATABASE_URL: withPassword }));
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    // It says where it writes, password hidden, and this is not a first run (the schema existed).
    expect(result.stdout).toContain(`runledger demo writes to PostgreSQL database "${testDatabase}" at postgres://`);
    expect(result.stdout).toContain(":***@");
    expect(result.stdout).not.toContain("hunter2");
    expect(result.stdout).not.toMatch(/first run/i);
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

  it("hides a password given as a query parameter too", async () => {
    // The server refuses these parameters, so the demo stops at its first statement, after
    // saying where it would write.
    const secret = urlFor(testDatabase, { password: "hunter2", query: "?sslmode=disable&PassWord=k3y&sslpassword=z9" });
    const result = await finished(startTs("src/cli.ts", ["demo"], { DATABASE_URL: secret }));
    expect(result.stdout).toContain(`runledger demo writes to PostgreSQL database "${testDatabase}"`);
    expect(result.stdout).toContain("PassWord=***");
    expect(result.stdout).toContain("sslpassword=***");
    expect(`${result.stdout}${result.stderr}`).not.toMatch(/hunter2|k3y|z9/);
  });

  it("says 'first run' only when runledger's schema did not exist before", async () => {
    const fresh = `${testDatabase}_first`;
    await db.execute(sql.raw(`create database "${fresh}"`));
    try {
      const first = await finished(startTs("src/cli.ts", ["demo"], { DATABASE_URL: urlFor(fresh) }));
      expect(first).toMatchObject({ code: 0, stderr: "" });
      expect(first.stdout).toMatch(/first run: created runledger's schema \(\d+ migrations\)/);
      const second = await finished(startTs("src/cli.ts", ["demo"], { DATABASE_URL: urlFor(fresh) }));
      expect(second).toMatchObject({ code: 0, stderr: "" });
      expect(second.stdout).not.toMatch(/first run/i);
      expect(second.stdout).toMatch(/schema current \(\d+ migrations\)/);
    } finally {
      await db.execute(sql.raw(`drop database if exists "${fresh}" with (force)`));
    }
  });

  it("says 'first run' for the embedded database only when its directory did not exist", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "runledger-demo-"));
    try {
      const cli = join(ROOT, "src/cli.ts");
      const first = await finished(startTs(cli, ["demo"], { DATABASE_URL: "" }, cwd));
      expect(first).toMatchObject({ code: 0, stderr: "" });
      expect(first.stdout).toContain("first run: creating the embedded database in .runledger/demo-db");
      const second = await finished(startTs(cli, ["demo"], { DATABASE_URL: "" }, cwd));
      expect(second).toMatchObject({ code: 0, stderr: "" });
      expect(second.stdout).not.toMatch(/first run/i);
      expect(second.stdout).toContain("opening the embedded database in .runledger/demo-db");
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 120_000);

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

/**
 * A terminal just big enough for the test: `columns` wide, wrapping a line that reaches the last
 * column (as terminals do), and understanding what the view writes: cursor up, erase line,
 * newline, cursor visibility.
 */
const ESC = String.fromCharCode(0x1b);
/** A control sequence after ESC: `[`, an optional `?`, a number, a letter. */
const CSI = /^\[(\??)(\d*)([A-Za-z])/;

function terminal(output: string, columns: number): string[] {
  const rows: string[][] = [[]];
  let row = 0;
  let col = 0;
  for (let i = 0; i < output.length; ) {
    const control = output.startsWith(ESC, i) ? CSI.exec(output.slice(i + 1, i + 16)) : null;
    if (control !== null) {
      i += 1 + control[0].length;
      if (control[3] === "A") row = Math.max(0, row - Number(control[2] || 1));
      else if (control[3] === "K") rows[row] = [];
      continue;
    }
    const char = String.fromCodePoint(output.codePointAt(i)!);
    i += char.length;
    if (char === "\n") {
      row++;
      col = 0;
      rows[row] ??= [];
      continue;
    }
    if (col >= columns) {
      row++;
      col = 0;
      rows[row] ??= [];
    }
    rows[row]![col++] = char;
  }
  return rows.map((r) => Array.from(r, (c) => c ?? " ").join(""));
}

function step(stepKey: string, status: WorkflowStepRecord["status"], jobId: string | null): WorkflowStepRecord {
  return { stepKey, status, jobId, jobType: `profiles.${stepKey}` } as WorkflowStepRecord;
}

describe("the demo's terminal view", () => {
  const live = (done: number, statuses: WorkflowStepRecord["status"][]): Live => ({
    runId: "r",
    startedAt: Date.now(),
    batchDone: done,
    batchFailed: 0,
    steps: ["crawl", "classify", "score", "persist"].map((key, i) => step(key, statuses[i]!, `job-${key}`)),
    progress: new Map([
      ["job-crawl", { done: 3, total: 5 }],
      ["job-classify", { done: 1, total: 4 }],
    ]),
    runStatus: undefined,
  });

  for (const columns of [50, 40, 120]) {
    it(`redraws in place at ${columns} columns: each frame replaces the last, no line wraps`, () => {
      let written = "";
      const view = new Progress({ columns, write: (text: string) => (written += text) }, true);
      const frames = [
        live(0, ["RUNNING", "BLOCKED", "BLOCKED", "BLOCKED"]),
        live(20, ["SUCCEEDED", "RUNNING", "RUNNING", "BLOCKED"]),
        live(BATCH_SIZE, ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]),
      ];
      for (const frame of frames) view.render(frame);
      const screen = terminal(written, columns);
      expect(screen.at(-1)).toBe("");
      const last = frameLines(frames[2]!, columns);
      // Only the last frame is on the screen: no row left over from an earlier one.
      expect(screen.slice(0, -1).map((row) => row.replace(/^workflow .*/, "workflow"))).toEqual(
        last.map((line) => line.replace(/^workflow .*/, "workflow")),
      );
      for (const line of last) expect(Array.from(line).length).toBeLessThan(columns);
      expect(last.some((line) => line.includes(`${BATCH_SIZE}/${BATCH_SIZE}`))).toBe(true);
      // The closing table fits too.
      const start = new Date(Date.now() - 2000);
      const finished = live(BATCH_SIZE, ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]);
      for (const s of finished.steps) Object.assign(s, { startedAt: start, finishedAt: new Date() });
      for (const line of summaryLines(finished, start, columns)) expect(line.length).toBeLessThan(columns);
    });
  }
});
