// Runs every program in examples/ as its own process against a database of its own, the way a
// reader would run it, and checks what it prints.

import type { ChildProcess } from "node:child_process";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../src/core/index.ts";
import { enqueueJob, getJobById } from "../src/store/index.ts";
import type { EphemeralDatabase } from "../src/testing/index.ts";
import { useTestDatabase } from "./support/db.ts";
import { finished, type ProcessResult, startTs } from "./support/processes.ts";
import { waitFor } from "./support/wait.ts";

const NAMES = [
  "enqueue-job",
  "workflow-dag",
  "external-gate",
  "append-workflow-steps",
  "retry-workflow",
  "schedule-job",
  "flow-control",
  "worker",
  "worker-migrate",
  "worker-uninitialized",
  "dashboard",
] as const;
const databases = Object.fromEntries(
  await Promise.all(NAMES.map(async (name) => [name, await useTestDatabase({ max: 2 })] as const)),
) as Record<(typeof NAMES)[number], EphemeralDatabase>;

function start(file: string, database: EphemeralDatabase, env: NodeJS.ProcessEnv = {}): ChildProcess {
  return startTs(`examples/${file}.ts`, [], { DATABASE_URL: database.url, RUNLEDGER_MIGRATE: "", ...env });
}

async function runExample(
  name: Exclude<(typeof NAMES)[number], `worker${string}` | "dashboard">,
): Promise<ProcessResult> {
  const result = await finished(start(name, databases[name]));
  if (result.code !== 0)
    throw new Error(`examples/${name}.ts exited ${result.code}:\n${result.stdout}${result.stderr}`);
  return result;
}

/** Collect a child's stdout as it arrives, for "wait until it printed …". */
function output(child: ChildProcess): () => string {
  let text = "";
  child.stdout?.on("data", (chunk) => {
    text += chunk;
  });
  return () => text;
}

describe("examples", () => {
  it("enqueue-job: an identical retry returns the same job", async () => {
    const first = await runExample("enqueue-job");
    expect(first.stdout).toMatch(/enqueued job [0-9a-f-]{36} \(created: true\)/);
    expect(first.stdout).toMatch(/retried with the same key: job [0-9a-f-]{36} \(created: false\)/);
    expect(first.stdout).toContain("same job: true");
    expect(first.stdout).toContain("status: PENDING, attempts allowed: 5");
    // Running the program again finds the job the first run created.
    const again = await runExample("enqueue-job");
    expect(again.stdout).toContain("(created: false)\nretried");
  });

  it("workflow-dag: crawl, then classify and score, then persist", async () => {
    const { stdout } = await runExample("workflow-dag");
    const order = ["crawl", "classify", "score", "persist"].map((step) => stdout.indexOf(`${step.padEnd(8)} p_123`));
    expect(order.every((index) => index >= 0)).toBe(true);
    expect(order[0]).toBeLessThan(Math.min(order[1]!, order[2]!));
    expect(order[3]).toBeGreaterThan(Math.max(order[1]!, order[2]!));
    expect(stdout).toContain("run status: SUCCEEDED");
    for (const step of ["crawl", "classify", "score", "persist"]) {
      expect(stdout).toMatch(new RegExp(`step ${step} +SUCCEEDED`));
    }
    // The idempotency key makes a second run of the program find the finished run.
    const again = await runExample("workflow-dag");
    expect(again.stdout).toMatch(/\(profiles\.research\) is SUCCEEDED/);
    expect(again.stdout).not.toContain("crawl    p_123");
  });

  it("flow-control: 2 running per tenant key, a paused type runs after resume", async () => {
    const { stdout } = await runExample("flow-control");
    for (const tenant of ["a", "b", "c"]) expect(stdout).toContain(`tenant:${tenant}: at most 2 running`);
    expect(stdout).toContain("report.mail ran while paused: false");
    expect(stdout).toContain("report.mail ran after resume");
  });

  it("external-gate: the refund waits for the approval", async () => {
    const { stdout } = await runExample("external-gate");
    expect(stdout).toMatch(/step approve +WAITING_FOR_EXTERNAL\n +step refund +BLOCKED/);
    expect(stdout.indexOf("approval recorded")).toBeLessThan(stdout.indexOf("refunding 120"));
    expect(stdout).toMatch(/step approve +SUCCEEDED \(approved by alice\)/);
    expect(stdout).toMatch(/step refund +SUCCEEDED/);
    expect(stdout).toContain("run status: SUCCEEDED");
  });

  it("append-workflow-steps: steps added through the window run before the run finishes", async () => {
    const { stdout } = await runExample("append-workflow-steps");
    expect(stdout).toContain("append APPENDED: file:a.csv, file:b.csv, report");
    expect(stdout).toContain("file: imported a.csv");
    expect(stdout).toContain("file: imported b.csv");
    expect(stdout.indexOf("window closed")).toBeLessThan(stdout.indexOf("report: every file imported"));
    expect(stdout).toContain("run status: SUCCEEDED");
    for (const step of ["fetch", "window", "file:a.csv", "file:b.csv", "report"]) {
      expect(stdout).toMatch(new RegExp(`step ${step} +SUCCEEDED`));
    }
    const again = await runExample("append-workflow-steps");
    expect(again.stdout).toContain("append ALREADY_APPLIED");
  });

  it("retry-workflow: the failed run is fixed, retried, resumes from its checkpoint and succeeds", async () => {
    const { stdout } = await runExample("retry-workflow");
    expect(stdout).toContain("import   row 3: 7.25\nrun status: COMPLETED_WITH_ERRORS");
    expect(stdout).toContain('step import  FAILED (orders.bad_row: row 4: amount "12,50" is not a number)');
    expect(stdout).toContain("step report  CANCELED (workflow.dependency_unsatisfied:");
    expect(stdout).toContain("retry RETRIED: retried import; waiting again report");
    expect(stdout).toContain("import   resuming at row 4 (run 2)");
    // Rows 1–3 ran once: the retry resumed after them.
    expect(stdout.match(/import {3}row 1:/g)).toHaveLength(1);
    expect(stdout).toContain("report   5 rows imported");
    expect(stdout).toMatch(/run status: SUCCEEDED\n {2}step import {2}SUCCEEDED\n {2}step report {2}SUCCEEDED/);
  });

  it("schedule-job: the due slot and a backfill become jobs that run, each with its slot", async () => {
    const { stdout } = await runExample("schedule-job");
    // This hour's slot fired; the three before it were backfilled.
    const fired = /fired slot (\S+) as job [0-9a-f-]{36}/.exec(stdout)?.[1];
    const hour = new Date(fired!).getTime();
    expect(hour % 3_600_000).toBe(0);
    expect(Math.abs(hour - Date.now())).toBeLessThan(3_700_000);
    const slot = (hoursBack: number) => new Date(hour - hoursBack * 3_600_000).toISOString();
    expect(stdout).toContain("schedule reports.hourly (0 0 * * * *, Europe/Berlin, SKIP)");
    expect(stdout).toContain("backfill: 3 created, 0 already there");
    expect(stdout).toContain("backfill again: 0 created, 3 already there");
    for (const back of [0, 1, 2, 3]) {
      expect(stdout).toContain(`building the hourly report for reports.hourly, slot ${slot(back)}`);
    }
    expect(stdout).toMatch(/reports\.build SUCCEEDED \(stage completed\)/);
    expect(stdout).toMatch(/next fire at \d{4}-\d\d-\d\dT\d\d:00:00\.000Z/);
    // Again: the cursor and the backfilled slots stay as they are.
    const again = await runExample("schedule-job");
    expect(again.stdout).toContain("backfill: 0 created, 3 already there");
    expect(again.stdout).toContain("this hour's slot has fired already");
  });

  it("worker: runs an enqueued job and exits cleanly on SIGTERM", async () => {
    const { db } = databases.worker;
    const child = start("worker", databases.worker, { JOBS_POLL_INTERVAL_MS: "100" });
    const stdout = output(child);
    const exit = finished(child);
    await waitFor(() => stdout().includes(" ready: email.send"), { timeoutMs: 20_000, what: "the worker to start" });

    const { id } = await enqueueJob(db, {
      jobType: "email.send",
      payload: { to: "ada@example.com", subject: "Welcome" },
    });
    await waitFor(async () => (await getJobById(db, id, ALL_ORGANIZATIONS))?.status === "SUCCEEDED", {
      what: "the job to succeed",
    });
    expect(stdout()).toContain(`sent "Welcome" to ada@example.com (job ${id}, attempt 1)`);

    child.kill("SIGTERM");
    const result = await exit;
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("SIGTERM received, shutting down");
    expect(result.stdout).toContain("worker stopped (abandoned jobs: 0)");
  });

  it("worker: refuses a database without the schema, with exit code 1", async () => {
    const database = databases["worker-uninitialized"];
    await database.db.execute(sql`drop schema runledger cascade`);
    const result = await finished(start("worker", database));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("worker failed: schema.uninitialized");
    expect(result.stdout).not.toContain("ready");
  });

  it("worker: migrates first with RUNLEDGER_MIGRATE=1", async () => {
    const database = databases["worker-migrate"];
    await database.db.execute(sql`drop schema runledger cascade`);
    const child = start("worker", database, { RUNLEDGER_MIGRATE: "1" });
    const stdout = output(child);
    const exit = finished(child);
    await waitFor(() => stdout().includes(" ready: email.send"), { timeoutMs: 20_000, what: "the worker to start" });
    child.kill("SIGINT");
    const result = await exit;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("SIGINT received, shutting down");
  });

  it("dashboard: admin sees and may press the buttons, viewer only looks, strangers log in", async () => {
    const database = databases.dashboard;
    const organizationId = "0190f0a0-0000-7000-8000-000000000001";
    await database.db.execute(sql`insert into runledger.job_definitions (job_type) values ('email.send')`);
    const job = await enqueueJob(database.db, { jobType: "email.send", organizationId, payload: { card: "4111" } });
    const child = start("dashboard", database, { DASHBOARD_PASSWORD: "pw", PORT: "0" });
    const stdout = output(child);
    try {
      const address = await waitFor(() => /dashboard at (\S+)/.exec(stdout())?.[1], {
        timeoutMs: 20_000,
        what: "the dashboard to listen",
      });
      const as = (user: string) => ({ authorization: `Basic ${Buffer.from(`${user}:pw`).toString("base64")}` });
      expect((await fetch(address)).status).toBe(401);
      const admin = await (await fetch(`${address}jobs/${job.id}`, { headers: as("admin") })).text();
      expect(admin).toContain('data-action="job.cancel"');
      expect(admin).toContain("••••");
      expect(admin).not.toContain("4111");
      const viewer = await fetch(`${address}jobs/${job.id}`, { headers: as("viewer") });
      expect(await viewer.text()).not.toContain("data-action=");
    } finally {
      child.kill("SIGTERM");
      expect((await finished(child)).code).toBe(0);
    }
  });
});
