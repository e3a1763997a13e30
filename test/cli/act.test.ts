import { beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../../src/core/index.ts";
import {
  countJobs,
  enqueueWorkflowRun,
  getJobById,
  getJobDefinition,
  getJobSchedule,
  getWorkflowRunById,
  listDeadLetters,
} from "../../src/store/index.ts";
import { claimJobs, completeJobFailure } from "../../src/store/worker.ts";
import { externalStep } from "../core/workflow-fixtures.ts";
import { ORG_A, ORG_B, type Seeded, seedDashboard } from "../dashboard/seed.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob, ledgerCounts, runSteps } from "../support/factories.ts";
import { parsed, runCli } from "./support.ts";

const { db, url } = await useTestDatabase();
let seeded: Seeded;
let failedRun: string;
const UNKNOWN = "00000000-0000-7000-8000-000000000000";
const ALL = { allOrganizations: true } as const;

beforeAll(async () => {
  seeded = await seedDashboard(db);
  await defineJob(db, "cli.step", { maxAttempts: 1 });
  const run = await enqueueWorkflowRun(db, {
    workflowType: "cli.flow",
    organizationId: ORG_A,
    metadata: {},
    idempotencyKey: null,
    steps: [externalStep("only", [], { executionKind: "JOB", jobType: "cli.step", organizationId: ORG_A })],
  });
  const [job] = await claimJobs(db, { workerId: "w-cli", leaseSeconds: 60, limit: 1, jobTypes: ["cli.step"] });
  await completeJobFailure(db, {
    lease: { jobId: job!.id, runNumber: 1, attempt: 1, workerId: "w-cli" },
    kind: "TERMINAL",
    code: "cli.failed",
    message: "failed",
  });
  failedRun = run.id;
});

const cli = (...args: string[]) => runCli(url, args);
const statusOf = async (id: string) => (await getJobById(db, id, ALL_ORGANIZATIONS))?.status;

describe("runledger changes", { timeout: 180_000 }, () => {
  it("jobs cancel by ids: each by the single-job rules; an unknown id makes it exit 1; --org hides others", async () => {
    const [first] = seeded.emailJobs;
    const result = await cli("jobs", "cancel", first!, UNKNOWN, "--reason", "bad batch", "--json");
    expect(result.code).toBe(1);
    expect(parsed(result)).toEqual({
      results: [
        { jobId: first, ok: true, status: "CANCELED" },
        { jobId: UNKNOWN, ok: false, error: { code: "job.not_found", message: expect.any(String) } },
      ],
    });
    expect(await statusOf(first!)).toBe("CANCELED");

    const hidden = await cli("jobs", "cancel", seeded.bJob, "--org", ORG_A);
    expect(hidden.code).toBe(1);
    expect(hidden.stderr).toContain("job.not_found");
    expect(await statusOf(seeded.bJob)).toBe("PENDING");

    const again = await cli("jobs", "requeue", first!);
    expect(again).toMatchObject({ code: 0, stderr: "" });
    expect(again.stdout).toContain(`${first} requeued (now PENDING)`);
  });

  it("jobs cancel by filter: refuses without --dry-run or --yes, counts with --dry-run, acts with --yes", async () => {
    const before = await ledgerCounts(db);
    const neither = await cli("jobs", "cancel", "--type", "email.send", "--org", ORG_A);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain("pass --dry-run to count the jobs, or --yes to cancel them");
    const dry = await cli("jobs", "cancel", "--type", "email.send", "--org", ORG_A, "--dry-run", "--json");
    expect(dry.code).toBe(0);
    // 12 pending, 4 succeeded.
    expect(parsed(dry)).toEqual({ dryRun: true, matched: 16, wouldChange: 12, capped: false });
    expect(await ledgerCounts(db)).toEqual(before);

    const done = await cli(
      "jobs",
      "cancel",
      "--type",
      "email.send",
      "--status",
      "PENDING",
      "--org",
      ORG_A,
      "--yes",
      "--json",
    );
    expect(done.code).toBe(0);
    expect(parsed(done)).toEqual({ dryRun: false, changed: 12, batches: 1 });
    expect(await countJobs(db, { scope: ALL, jobType: "email.send", statuses: ["PENDING"] })).toMatchObject({
      matched: 0,
    });
    expect(await statusOf(seeded.bJob)).toBe("PENDING");
  });

  it("dead-letters requeue by filter: dry run, then requeue; the list empties", async () => {
    const dry = await cli("dead-letters", "requeue", "--type", "reports.build", "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("dry run: 2 jobs match; 2 would be requeued");
    const done = await cli("dead-letters", "requeue", "--type", "reports.build", "--yes", "--reason", "source fixed");
    expect(done).toMatchObject({ code: 0, stderr: "" });
    expect(done.stdout).toContain("requeued 2 jobs");
    for (const id of seeded.deadJobs)
      expect(await getJobById(db, id, ALL_ORGANIZATIONS)).toMatchObject({ status: "PENDING", runNumber: 2 });
    expect((await listDeadLetters(db, { scope: ALL, jobType: "reports.build", limit: 10 })).items).toEqual([]);
  });

  it("gates approve and reject: --reason required; a conflicting decision exits 1", async () => {
    const noReason = await cli("gates", "approve", seeded.run, "approve");
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain("--reason is required");
    const approved = await cli("gates", "approve", seeded.run, "approve", "--reason", "looks right", "--json");
    expect(approved.code).toBe(0);
    expect(parsed(approved)).toMatchObject({
      step: { stepKey: "approve", status: "SUCCEEDED", statusReason: "looks right" },
    });
    const steps = await runSteps(db, seeded.run);
    expect(steps.find((s) => s.stepKey === "persist")?.status).toBe("ENQUEUED");
    const rejected = await cli("gates", "reject", seeded.run, "approve", "--reason", "changed my mind");
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toContain("workflow.external_step_conflicting_completion_retry");
  });

  it("runs cancel and runs retry", async () => {
    const canceled = await cli("runs", "cancel", seeded.bRun, "--org", ORG_B);
    expect(canceled).toMatchObject({ code: 0, stderr: "" });
    expect(canceled.stdout).toBe(`run ${seeded.bRun} CANCELED\n`);
    expect((await getWorkflowRunById(db, seeded.bRun, ALL_ORGANIZATIONS))?.status).toBe("CANCELED");
    const unknown = await cli("runs", "cancel", UNKNOWN);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("workflow.run_not_found");

    const retried = await cli("runs", "retry", failedRun, "--json");
    expect(retried.code).toBe(0);
    expect(parsed(retried)).toMatchObject({
      outcome: "RETRIED",
      run: { id: failedRun, status: "RUNNING" },
      retriedSteps: ["only"],
      reopenedSteps: [],
    });
    const live = await cli("runs", "retry", failedRun);
    expect(live.code).toBe(1);
    expect(live.stderr).toContain("workflow.retry_run_live");
  });

  it("schedules and job types pause and resume; an unknown name exits 1", async () => {
    const paused = await cli("schedules", "pause", "a-hourly-digest");
    expect(paused).toMatchObject({ code: 0, stdout: "schedule a-hourly-digest paused\n" });
    expect((await getJobSchedule(db, "a-hourly-digest", ALL))?.isActive).toBe(false);
    const resumed = await cli("schedules", "resume", "a-hourly-digest", "--json");
    expect(parsed(resumed)).toEqual({ name: "a-hourly-digest", isActive: true });
    expect((await getJobSchedule(db, "a-hourly-digest", ALL))?.isActive).toBe(true);
    const hidden = await cli("schedules", "pause", "b-nightly", "--org", ORG_A);
    expect(hidden.code).toBe(1);
    expect((await getJobSchedule(db, "b-nightly", ALL))?.isActive).toBe(true);

    const pausedType = await cli("types", "pause", "email.send");
    expect(pausedType).toMatchObject({ code: 0, stdout: "job type email.send paused\n" });
    expect((await getJobDefinition(db, "email.send"))?.pausedAt).toBeInstanceOf(Date);
    const listed = parsed(await cli("types", "list", "--json")) as { items: { jobType: string; paused: boolean }[] };
    expect(listed.items.find((t) => t.jobType === "email.send")).toMatchObject({ paused: true });
    const resumedType = await cli("types", "resume", "email.send", "--json");
    expect(parsed(resumedType)).toEqual({ jobType: "email.send", paused: false, pausedAt: null });
    expect((await getJobDefinition(db, "email.send"))?.pausedAt).toBeNull();
    const before = await ledgerCounts(db);
    const unknown = await cli("types", "pause", "no.such.type");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("job.definition_not_found");
    expect(await ledgerCounts(db)).toEqual(before);
  });
});
