import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ALL_ORGANIZATIONS,
  type OrganizationScope,
  RunledgerError,
  WorkflowStepEnqueueBuilder as Step,
  WorkflowDagBuilder,
  WorkflowRunEnqueueBuilder,
} from "../../src/core/index.ts";
import {
  appendWorkflowSteps,
  cancelWorkflowRun,
  completeExternalWorkflowStep,
  createDb,
  type Executor,
  enqueueWorkflowRun,
  getJobById,
  getWorkflowRunById,
  listJobAttempts,
  listJobEvents,
  queryRows,
  type RetryWorkflowRunInput,
  type RunledgerDb,
  retryWorkflowRun,
} from "../../src/store/index.ts";
import {
  claimJobs,
  claimRunnableJobs,
  completeJobFailure,
  completeJobSuccess,
  type LeaseIdentity,
  reapExpiredLeases,
  updateJobProgress,
} from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { countRows, defineJob, expireLease, ledgerCounts, runSteps } from "../support/factories.ts";
import { waitFor } from "../support/wait.ts";

const { db, url } = await useTestDatabase({ max: 4 });
const racers: RunledgerDb[] = Array.from({ length: 3 }, () => createDb(url, { max: 2 }));
afterAll(() => Promise.all(racers.map((r) => r.$runledger.close())));

const ORG = "0190f0a0-0000-7000-8000-0000000000a1";
const OTHER = "0190f0a0-0000-7000-8000-0000000000b2";
const ALL: OrganizationScope = ALL_ORGANIZATIONS;

beforeAll(async () => {
  for (const type of ["r.crawl", "r.classify", "r.score", "r.persist", "r.cleanup", "r.step"]) {
    await defineJob(db, type, { maxAttempts: 1 });
  }
});

/**
 * Claim every due job of the run and finish it as `decide` says (by step key), until none is
 * due. Returns the step keys handled, in order.
 */
async function work(
  runId: string,
  decide: (stepKey: string) => "succeed" | "fail" = () => "succeed",
  database: Executor = db,
): Promise<string[]> {
  const handled: string[] = [];
  for (;;) {
    const jobs = await claimJobs(database, { workerId: "w", leaseSeconds: 60, limit: 100 });
    const mine = jobs.filter((job) => job.workflowRunId === runId);
    if (jobs.length === 0) return handled;
    for (const job of jobs) {
      const lease: LeaseIdentity = { jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: "w" };
      const [step] = await queryRows<{ step_key: string }>(
        database,
        sql`select step_key from runledger.workflow_steps where id = ${job.workflowStepId}`,
      );
      const key = step?.step_key ?? "";
      if (mine.includes(job)) handled.push(key);
      if (!mine.includes(job) || decide(key) === "succeed") await completeJobSuccess(database, { lease });
      else
        await completeJobFailure(database, { lease, kind: "TERMINAL", code: "app.failed", message: `${key} failed` });
    }
  }
}

/** crawl → classify, score → persist (after both succeed); cleanup after classify in any case. */
function research(metadata: Record<string, unknown> = {}) {
  return WorkflowDagBuilder.new("r.research", metadata)
    .job("crawl", "r.crawl", {})
    .job("classify", "r.classify", {})
    .afterSuccess("classify", ["crawl"])
    .job("score", "r.score", {})
    .afterSuccess("score", ["crawl"])
    .job("persist", "r.persist", {})
    .afterSuccess("persist", ["classify", "score"])
    .job("cleanup", "r.cleanup", {})
    .afterTerminal("cleanup", ["classify"])
    .build();
}

async function failedRun(failing: string[] = ["classify"], organizationId: string | null = null) {
  const run = await enqueueWorkflowRun(db, { ...research(), organizationId });
  await work(run.id, (key) => (failing.includes(key) ? "fail" : "succeed"));
  expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("COMPLETED_WITH_ERRORS");
  return run;
}

async function stepsOf(
  runId: string,
): Promise<Record<string, { status: string; pending: number; unsatisfied: number }>> {
  const steps = await runSteps(db, runId);
  return Object.fromEntries(
    steps.map((s) => [
      s.stepKey,
      { status: s.status, pending: s.dependencyCountPending, unsatisfied: s.dependencyCountUnsatisfied },
    ]),
  );
}

/**
 * Everything that must hold for a run whatever happened to it: each step's counters match its
 * prerequisites' statuses, each step agrees with its job, and the run's status is the one its
 * steps derive (or CANCELED).
 */
async function expectConsistent(runId: string): Promise<void> {
  const counters = await queryRows<{ step_key: string; ok: boolean }>(
    db,
    sql`select s.step_key,
        s.dependency_count_pending = (select count(*) from runledger.workflow_step_dependencies e
          join runledger.workflow_steps p on p.id = e.prerequisite_step_id
          where e.dependent_step_id = s.id and p.status not in ('SUCCEEDED', 'FAILED', 'CANCELED'))
        and s.dependency_count_unsatisfied = (select count(*) from runledger.workflow_step_dependencies e
          join runledger.workflow_steps p on p.id = e.prerequisite_step_id
          where e.dependent_step_id = s.id and e.release_mode = 'ON_SUCCESS' and p.status in ('FAILED', 'CANCELED'))
        as ok
      from runledger.workflow_steps s where s.workflow_run_id = ${runId}`,
  );
  expect(counters.filter((c) => !c.ok).map((c) => c.step_key)).toEqual([]);
  const links = await queryRows<{ step_key: string; step: string; job: string | null }>(
    db,
    sql`select s.step_key, s.status::text as step, j.status::text as job
      from runledger.workflow_steps s left join runledger.job_queue j on j.id = s.job_id
      where s.workflow_run_id = ${runId} and s.execution_kind = 'JOB'`,
  );
  const allowed: Record<string, (string | null)[]> = {
    BLOCKED: [null],
    ENQUEUED: ["PENDING"],
    RUNNING: ["PENDING", "LEASED"],
    SUCCEEDED: ["SUCCEEDED"],
    FAILED: ["DEAD_LETTERED"],
    CANCELED: [null, "CANCELED"],
  };
  for (const link of links)
    expect(allowed[link.step], `${link.step_key}: ${link.step}/${link.job}`).toContain(link.job);
  const run = (await getWorkflowRunById(db, runId, ALL_ORGANIZATIONS))!;
  if (run.status === "CANCELED") return;
  const statuses = links
    .map((l) => l.step)
    .concat(
      (
        await queryRows<{ status: string }>(
          db,
          sql`select status::text from runledger.workflow_steps where workflow_run_id = ${runId} and execution_kind = 'EXTERNAL'`,
        )
      ).map((r) => r.status),
    );
  const derived = statuses.some((s) => ["BLOCKED", "ENQUEUED", "RUNNING"].includes(s))
    ? "RUNNING"
    : statuses.includes("WAITING_FOR_EXTERNAL")
      ? "WAITING_FOR_EXTERNAL"
      : statuses.some((s) => s === "FAILED" || s === "CANCELED")
        ? "COMPLETED_WITH_ERRORS"
        : "SUCCEEDED";
  expect(run.status).toBe(derived);
  expect(run.finishedAt === null).toBe(derived === "RUNNING" || derived === "WAITING_FOR_EXTERNAL");
}

async function refusal(call: Promise<unknown>): Promise<string> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RunledgerError);
  return (error as RunledgerError).code;
}

const retry = (input: Omit<RetryWorkflowRunInput, "scope"> & { scope?: OrganizationScope }, database: Executor = db) =>
  retryWorkflowRun(database, { scope: ALL, ...input });

/** Resolves once `n` backends of this database wait for a lock. */
async function blockedOnLocks(n: number): Promise<void> {
  await waitFor(
    async () =>
      (
        await queryRows<{ n: number }>(
          db,
          sql`select count(*)::int as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'`,
        )
      )[0]!.n >= n,
    { what: `${n} backends waiting for a lock` },
  );
}

/** Run `first` in a transaction held open until `second` waits for its locks, then commit. */
async function interleave<A, B>(
  first: (tx: Executor) => Promise<A>,
  second: () => Promise<B>,
): Promise<[PromiseSettledResult<A>, PromiseSettledResult<B>]> {
  let secondDone: Promise<B> | undefined;
  const firstDone = db.transaction(async (tx) => {
    const result = await first(tx);
    secondDone = second();
    secondDone.catch(() => {});
    await blockedOnLocks(1);
    return result;
  });
  const a = await Promise.allSettled([firstDone]);
  const b = await Promise.allSettled([secondDone!]);
  return [a[0]!, b[0]!];
}

describe("retryWorkflowRun", () => {
  it("requeues the failed step, reopens the steps it left unsatisfied, and the run finishes", async () => {
    const run = await failedRun();
    expect(await stepsOf(run.id)).toMatchObject({
      classify: { status: "FAILED" },
      persist: { status: "CANCELED", pending: 0, unsatisfied: 1 },
      cleanup: { status: "SUCCEEDED" },
    });
    const before = (await runSteps(db, run.id)).find((s) => s.stepKey === "classify")!;

    const result = await retry({ workflowRunId: run.id, reason: "fixed the classifier", mutationKey: "retry-1" });
    expect(result.outcome).toBe("RETRIED");
    expect(result.mutationKey).toBe("retry-1");
    expect(result.workflowRun).toMatchObject({ id: run.id, status: "RUNNING", finishedAt: null });
    expect(result.retriedSteps.map((s) => [s.stepKey, s.status])).toEqual([["classify", "ENQUEUED"]]);
    expect(result.reopenedSteps.map((s) => [s.stepKey, s.status])).toEqual([["persist", "BLOCKED"]]);
    // cleanup already ran after classify's failure: it keeps its outcome, its counter counts classify again.
    expect(await stepsOf(run.id)).toMatchObject({
      classify: { status: "ENQUEUED" },
      persist: { status: "BLOCKED", pending: 1, unsatisfied: 0 },
      cleanup: { status: "SUCCEEDED", pending: 1, unsatisfied: 0 },
    });
    await expectConsistent(run.id);

    // The same job, as its next run; its failed run stays in the ledger.
    const job = (await getJobById(db, before.jobId!, ALL_ORGANIZATIONS))!;
    expect(job).toMatchObject({ status: "PENDING", runNumber: 2, attempt: 0, statusReason: "fixed the classifier" });
    const events = (await listJobEvents(db, { scope: ALL_ORGANIZATIONS, jobId: job.id, limit: 100 })).items;
    expect(events.map((e) => `${e.runNumber}:${e.eventType}`)).toEqual([
      "1:ENQUEUED",
      "1:LEASED",
      "1:FAILED",
      "1:DEAD_LETTERED",
      "2:REQUEUED",
    ]);
    expect(events.at(-1)!.payload).toEqual({
      reason: "fixed the classifier",
      requeue_kind: "WORKFLOW_RETRY",
      workflow_run_id: run.id,
      mutation_key: "retry-1",
    });
    const [mutation] = await queryRows<{ mutation_key: string; request: Record<string, unknown> }>(
      db,
      sql`select mutation_key, request from runledger.workflow_run_mutations where workflow_run_id = ${run.id}`,
    );
    expect(mutation).toEqual({
      mutation_key: "retry-1",
      request: {
        kind: "RETRY",
        step_keys: null,
        reason: "fixed the classifier",
        reset_checkpoints: false,
        retried_step_keys: ["classify"],
        reopened_step_keys: ["persist"],
      },
    });

    expect(await work(run.id)).toEqual(["classify", "persist"]);
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("SUCCEEDED");
    expect(await stepsOf(run.id)).toMatchObject({ cleanup: { status: "SUCCEEDED", pending: 0 } });
    await expectConsistent(run.id);
    expect(
      (await listJobAttempts(db, { scope: ALL_ORGANIZATIONS, jobId: job.id, limit: 10 })).items.map((a) => [
        a.runNumber,
        a.outcome,
      ]),
    ).toEqual([
      [1, "TERMINAL"],
      [2, null],
    ]);
  });

  it("reopens a chain of unsatisfied steps transitively, and only those a retried step can satisfy", async () => {
    const run = await enqueueWorkflowRun(
      db,
      WorkflowRunEnqueueBuilder.tryNew("r.chain", {})
        .step(Step.tryJob("a", "r.step", {}))
        .step(Step.tryJob("b", "r.step", {}).dependsOnSuccess(["a"]))
        .step(Step.tryJob("c", "r.step", {}).dependsOnSuccess(["b"]))
        .step(Step.tryExternal("gate", {}))
        .step(Step.tryJob("d", "r.step", {}).dependsOnSuccess(["a", "gate"]))
        .step(Step.tryJob("e", "r.step", {}).dependsOnTerminal(["c"]))
        .build(),
    );
    await work(run.id, (key) => (key === "a" ? "fail" : "succeed"));
    await completeExternalWorkflowStep(db, {
      scope: ALL_ORGANIZATIONS,
      workflowRunId: run.id,
      stepKey: "gate",
      terminalStatus: "FAILED",
    });
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("COMPLETED_WITH_ERRORS");
    expect(await stepsOf(run.id)).toMatchObject({
      b: { status: "CANCELED" },
      c: { status: "CANCELED" },
      d: { status: "CANCELED" },
      e: { status: "SUCCEEDED" },
    });

    const result = await retry({ workflowRunId: run.id });
    expect(result.retriedSteps.map((s) => s.stepKey)).toEqual(["a"]);
    // d also waits on the failed gate, which a retry does not reopen: it stays canceled.
    expect(result.reopenedSteps.map((s) => s.stepKey)).toEqual(["b", "c"]);
    expect(await stepsOf(run.id)).toMatchObject({
      a: { status: "ENQUEUED" },
      b: { status: "BLOCKED", pending: 1, unsatisfied: 0 },
      c: { status: "BLOCKED", pending: 1, unsatisfied: 0 },
      d: { status: "CANCELED", pending: 1, unsatisfied: 1 },
      e: { status: "SUCCEEDED", pending: 1 },
    });
    await expectConsistent(run.id);
    expect(await work(run.id)).toEqual(["a", "b", "c"]);
    expect(await stepsOf(run.id)).toMatchObject({ d: { status: "CANCELED", pending: 0, unsatisfied: 1 } });
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("COMPLETED_WITH_ERRORS");
    await expectConsistent(run.id);
  });

  it("retries only the named steps; the others can be retried later", async () => {
    const run = await failedRun(["classify", "score"]);
    const result = await retry({ workflowRunId: run.id, stepKeys: ["score"] });
    expect(result.retriedSteps.map((s) => s.stepKey)).toEqual(["score"]);
    // persist still has a failed prerequisite that is not retried: it stays canceled.
    expect(result.reopenedSteps).toEqual([]);
    await expectConsistent(run.id);
    expect(await work(run.id)).toEqual(["score"]);
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("COMPLETED_WITH_ERRORS");

    const again = await retry({ workflowRunId: run.id });
    expect(again.retriedSteps.map((s) => s.stepKey)).toEqual(["classify"]);
    expect(again.reopenedSteps.map((s) => s.stepKey)).toEqual(["persist"]);
    expect(await work(run.id)).toEqual(["classify", "persist"]);
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("SUCCEEDED");
    await expectConsistent(run.id);
  });

  it("keeps the failed job's progress and checkpoint for the handler to resume, unless told to reset them", async () => {
    for (const resetCheckpoints of [false, true]) {
      await work("none");
      const run = await enqueueWorkflowRun(
        db,
        WorkflowDagBuilder.new("r.resume", {}).job("only", "r.step", {}).build(),
      );
      const [job] = await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 1, jobTypes: ["r.step"] });
      expect(job!.workflowRunId).toBe(run.id);
      const lease = { jobId: job!.id, runNumber: 1, attempt: 1, workerId: "w" };
      await updateJobProgress(db, { lease, progressDone: 6, progressTotal: 10, checkpoint: { next: 7 } });
      await completeJobFailure(db, { lease, kind: "TERMINAL", code: "app.bad_row", message: "row 7 is bad" });

      await retry({ workflowRunId: run.id, resetCheckpoints });
      expect(await getJobById(db, job!.id, ALL_ORGANIZATIONS)).toMatchObject(
        resetCheckpoints
          ? { checkpoint: null, progressDone: null, progressTotal: null }
          : { checkpoint: { next: 7 }, progressDone: 6, progressTotal: 10 },
      );
      const [runnable] = await claimRunnableJobs(db, {
        workerId: "w",
        leaseSeconds: 60,
        limit: 1,
        jobTypes: ["r.step"],
      });
      expect(runnable).toMatchObject({ id: job!.id, runNumber: 2, attempt: 1 });
      expect(runnable!.checkpoint).toEqual(resetCheckpoints ? null : { next: 7 });
      await completeJobSuccess(db, { lease: runnable! });
      expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("SUCCEEDED");
    }
  });

  it("releases a new job for a failed step whose job was deleted", async () => {
    const run = await failedRun();
    const classify = (await runSteps(db, run.id)).find((s) => s.stepKey === "classify")!;
    await db.execute(sql`delete from runledger.job_queue where id = ${classify.jobId}`);
    const result = await retry({ workflowRunId: run.id });
    const [step] = result.retriedSteps;
    expect(step).toMatchObject({ stepKey: "classify", status: "ENQUEUED" });
    expect(step!.jobId).not.toBe(classify.jobId);
    expect(await getJobById(db, step!.jobId!, ALL_ORGANIZATIONS)).toMatchObject({ status: "PENDING", runNumber: 1 });
    await expectConsistent(run.id);
    expect(await work(run.id)).toEqual(["classify", "persist"]);
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("SUCCEEDED");
  });

  it("a failed step that ran after another failed one waits for its retry, with a new job", async () => {
    const run = await enqueueWorkflowRun(
      db,
      WorkflowDagBuilder.new("r.both", {})
        .job("first", "r.step", {})
        .job("after", "r.step", {})
        .afterTerminal("after", ["first"])
        .build(),
    );
    expect(await work(run.id, () => "fail")).toEqual(["first", "after"]);
    const old = (await runSteps(db, run.id)).find((s) => s.stepKey === "after")!.jobId!;
    const result = await retry({ workflowRunId: run.id });
    expect(result.retriedSteps.map((s) => [s.stepKey, s.status, s.dependencyCountPending])).toEqual([
      ["first", "ENQUEUED", 0],
      ["after", "BLOCKED", 1],
    ]);
    // The old job stays in the ledger as it was, without the link.
    expect(await getJobById(db, old, ALL_ORGANIZATIONS)).toMatchObject({
      status: "DEAD_LETTERED",
      workflowStepId: null,
      runNumber: 1,
    });
    await expectConsistent(run.id);
    expect(await work(run.id)).toEqual(["first", "after"]);
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("SUCCEEDED");
    const fresh = (await runSteps(db, run.id)).find((s) => s.stepKey === "after")!.jobId!;
    expect(fresh).not.toBe(old);
  });

  it("is idempotent per mutation key, and refuses the key for another request", async () => {
    const run = await failedRun();
    const first = await retry({ workflowRunId: run.id, mutationKey: "k", mutationMetadata: { by: "ops" } });
    const again = await retry({ workflowRunId: run.id, mutationKey: "k", mutationMetadata: { by: "someone" } });
    expect(again.outcome).toBe("ALREADY_APPLIED");
    expect(again.retriedSteps.map((s) => s.id)).toEqual(first.retriedSteps.map((s) => s.id));
    expect(again.reopenedSteps.map((s) => s.id)).toEqual(first.reopenedSteps.map((s) => s.id));
    expect(await refusal(retry({ workflowRunId: run.id, mutationKey: "k", reason: "other" }))).toBe(
      "workflow.retry_conflicting_retry",
    );
    // An append's key is not a retry's.
    await expect(
      appendWorkflowSteps(db, {
        scope: ALL_ORGANIZATIONS,
        workflowRunId: run.id,
        mutationKey: "k",
        appendWindowStepKey: "x",
        steps: [],
      }),
    ).rejects.toMatchObject({ code: "workflow.append_conflicting_retry" });
    const classify = first.retriedSteps[0]!;
    expect((await getJobById(db, classify.jobId!, ALL_ORGANIZATIONS))!.runNumber).toBe(2);
  });

  it("refuses live, canceled and successful runs, unknown and unfailed steps, and writes nothing", async () => {
    // A run waiting on a gate is live and has no job that work() below would run.
    const live = await enqueueWorkflowRun(
      db,
      WorkflowRunEnqueueBuilder.tryNew("r.gate", {}).step(Step.tryExternal("gate", {})).build(),
    );
    const canceled = await enqueueWorkflowRun(db, research());
    await cancelWorkflowRun(db, { scope: ALL_ORGANIZATIONS, workflowRunId: canceled.id });
    const succeeded = await enqueueWorkflowRun(db, research());
    await work(succeeded.id);
    const failed = await failedRun();
    const gateOnly = await enqueueWorkflowRun(
      db,
      WorkflowRunEnqueueBuilder.tryNew("r.gate", {}).step(Step.tryExternal("gate", {})).build(),
    );
    await completeExternalWorkflowStep(db, {
      scope: ALL_ORGANIZATIONS,
      workflowRunId: gateOnly.id,
      stepKey: "gate",
      terminalStatus: "FAILED",
    });
    const scoped = await failedRun(["classify"], ORG);

    const before = { ...(await ledgerCounts(db)), mutations: await countRows(db, "workflow_run_mutations") };
    const cases: [() => Promise<unknown>, string][] = [
      [() => retry({ workflowRunId: live.id }), "workflow.retry_run_live"],
      [() => retry({ workflowRunId: canceled.id }), "workflow.retry_run_canceled"],
      [() => retry({ workflowRunId: succeeded.id }), "workflow.retry_nothing_to_retry"],
      [() => retry({ workflowRunId: gateOnly.id }), "workflow.retry_nothing_to_retry"],
      [() => retry({ workflowRunId: failed.id, stepKeys: ["nope"] }), "workflow.retry_step_not_found"],
      [() => retry({ workflowRunId: failed.id, stepKeys: ["classify", "crawl"] }), "workflow.retry_step_not_failed"],
      [() => retry({ workflowRunId: failed.id, stepKeys: ["persist"] }), "workflow.retry_step_not_failed"],
      [() => retry({ workflowRunId: failed.id, stepKeys: [] }), "workflow.retry_invalid_request"],
      [() => retry({ workflowRunId: failed.id, reason: " " }), "workflow.retry_invalid_request"],
      [() => retry({ workflowRunId: failed.id, mutationKey: "" }), "workflow.retry_invalid_request"],
      [() => retry({ workflowRunId: failed.id, mutationMetadata: { bad: "\u0000" } }), "job.invalid_payload"],
      [() => retry({ workflowRunId: "not-a-uuid" }), "workflow.run_not_found"],
      [() => retry({ workflowRunId: scoped.id, scope: { organizationId: OTHER } }), "workflow.run_not_found"],
      [() => retryWorkflowRun(db, { workflowRunId: failed.id } as RetryWorkflowRunInput), "scope.required"],
      [
        () =>
          db.transaction(
            async (tx) => {
              await retry({ workflowRunId: failed.id }, tx);
            },
            { isolationLevel: "repeatable read" },
          ),
        "workflow.retry_unsupported_isolation",
      ],
    ];
    for (const [call, code] of cases) expect(await refusal(call())).toBe(code);
    expect({ ...(await ledgerCounts(db)), mutations: await countRows(db, "workflow_run_mutations") }).toEqual(before);
    // The run's own organization sees it.
    expect((await retry({ workflowRunId: scoped.id, scope: { organizationId: ORG } })).outcome).toBe("RETRIED");
  });
});

describe("retryWorkflowRun races", () => {
  it("retry and cancel: whichever commits first, the other sees its outcome", async () => {
    // Cancel first: a no-op on a finished run; the retry then proceeds.
    const a = await failedRun();
    const [canceled, retried] = await interleave(
      (tx) => cancelWorkflowRun(tx, { scope: ALL_ORGANIZATIONS, workflowRunId: a.id }),
      () => retry({ workflowRunId: a.id }, racers[0]!),
    );
    expect(canceled).toMatchObject({ status: "fulfilled", value: { status: "COMPLETED_WITH_ERRORS" } });
    expect(retried).toMatchObject({ status: "fulfilled", value: { outcome: "RETRIED" } });
    await expectConsistent(a.id);

    // Retry first: the cancel then cancels the retried run, its requeued job included.
    const b = await failedRun();
    const [retriedB, canceledB] = await interleave(
      (tx) => retry({ workflowRunId: b.id }, tx),
      () => cancelWorkflowRun(racers[0]!, { scope: ALL_ORGANIZATIONS, workflowRunId: b.id }),
    );
    expect(retriedB.status).toBe("fulfilled");
    expect(canceledB).toMatchObject({ status: "fulfilled", value: { status: "CANCELED" } });
    const classify = (await runSteps(db, b.id)).find((s) => s.stepKey === "classify")!;
    expect(classify.status).toBe("CANCELED");
    expect(await getJobById(db, classify.jobId!, ALL_ORGANIZATIONS)).toMatchObject({
      status: "CANCELED",
      runNumber: 2,
    });
    await expectConsistent(b.id);

    // Unordered, many times: never a deadlock, always one of the two outcomes.
    for (let i = 0; i < 8; i++) {
      const run = await failedRun();
      const [r, c] = await Promise.allSettled([
        retry({ workflowRunId: run.id }, racers[i % 3]!),
        cancelWorkflowRun(racers[(i + 1) % 3]!, { scope: ALL_ORGANIZATIONS, workflowRunId: run.id }),
      ]);
      // The cancel is a no-op on the finished run, so the retry always applies; the cancel
      // either came first (and the run is RUNNING) or canceled the retried run.
      expect(r.status).toBe("fulfilled");
      expect(c.status).toBe("fulfilled");
      const canceledFirst = c.status === "fulfilled" && c.value.status === "COMPLETED_WITH_ERRORS";
      expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe(
        canceledFirst ? "RUNNING" : "CANCELED",
      );
      await expectConsistent(run.id);
    }
  });

  it("two concurrent retries: exactly one wins, or with one mutation key both converge", async () => {
    const run = await failedRun();
    const [first, second] = await interleave(
      (tx) => retry({ workflowRunId: run.id }, tx),
      () => retry({ workflowRunId: run.id }, racers[0]!),
    );
    expect(first).toMatchObject({ status: "fulfilled", value: { outcome: "RETRIED" } });
    expect(second).toMatchObject({ status: "rejected", reason: { code: "workflow.retry_run_live" } });

    const keyed = await failedRun();
    const [k1, k2] = await interleave(
      (tx) => retry({ workflowRunId: keyed.id, mutationKey: "same" }, tx),
      () => retry({ workflowRunId: keyed.id, mutationKey: "same" }, racers[0]!),
    );
    expect(k1).toMatchObject({ status: "fulfilled", value: { outcome: "RETRIED" } });
    expect(k2).toMatchObject({ status: "fulfilled", value: { outcome: "ALREADY_APPLIED" } });
    const ids = (r: PromiseSettledResult<{ retriedSteps: { id: string }[] }>) =>
      r.status === "fulfilled" ? r.value.retriedSteps.map((s) => s.id) : [];
    expect(ids(k2)).toEqual(ids(k1));

    for (let i = 0; i < 6; i++) {
      const r = await failedRun();
      const outcomes = await Promise.allSettled(racers.map((racer) => retry({ workflowRunId: r.id }, racer)));
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
      for (const o of outcomes) if (o.status === "rejected") expect(o.reason.code).toBe("workflow.retry_run_live");
      const job = (await runSteps(db, r.id)).find((s) => s.stepKey === "classify")!.jobId!;
      expect((await getJobById(db, job, ALL_ORGANIZATIONS))!.runNumber).toBe(2);
      await expectConsistent(r.id);
    }
  });

  it("retry and append: a run with an open window is live, so at most one of them applies", async () => {
    const windowed = () =>
      enqueueWorkflowRun(
        db,
        WorkflowRunEnqueueBuilder.tryNew("r.window", {})
          .step(Step.tryExternal("window", {}))
          .step(Step.tryJob("f", "r.step", {}))
          .step(Step.tryJob("g", "r.step", {}).dependsOnSuccess(["f"]))
          .build(),
      );
    const appended = (runId: string, database: Executor) =>
      appendWorkflowSteps(database, {
        scope: ALL_ORGANIZATIONS,
        workflowRunId: runId,
        mutationKey: "more",
        appendWindowStepKey: "window",
        steps: [Step.tryJob("h", "r.step", {}).dependsOnTerminal(["window"]).build()],
      });

    // The window closes (the run finishes) while append and retry wait: the retry applies.
    const a = await windowed();
    await work(a.id, (key) => (key === "f" ? "fail" : "succeed"));
    expect(await refusal(retry({ workflowRunId: a.id }))).toBe("workflow.retry_run_live");
    let racing: Promise<PromiseSettledResult<unknown>[]> | undefined;
    await db.transaction(async (tx) => {
      await completeExternalWorkflowStep(tx, {
        scope: ALL_ORGANIZATIONS,
        workflowRunId: a.id,
        stepKey: "window",
        terminalStatus: "SUCCEEDED",
      });
      racing = Promise.allSettled([appended(a.id, racers[0]!), retry({ workflowRunId: a.id }, racers[1]!)]);
      await blockedOnLocks(2);
    });
    const [append, retried] = await racing!;
    expect(append).toMatchObject({ status: "rejected", reason: { code: "workflow.append_window_not_open" } });
    expect(retried).toMatchObject({ status: "fulfilled", value: { outcome: "RETRIED" } });
    await expectConsistent(a.id);

    // The append commits first: the run is live, so the retry is refused.
    const b = await windowed();
    await work(b.id, (key) => (key === "f" ? "fail" : "succeed"));
    const [appendB, retryB] = await interleave(
      (tx) => appended(b.id, tx),
      () => retry({ workflowRunId: b.id }, racers[0]!),
    );
    expect(appendB).toMatchObject({ status: "fulfilled", value: { outcome: "APPENDED" } });
    expect(retryB).toMatchObject({ status: "rejected", reason: { code: "workflow.retry_run_live" } });
    await expectConsistent(b.id);

    // Unordered: gate completion, append and retry together; every outcome is one of these.
    for (let i = 0; i < 6; i++) {
      const run = await windowed();
      await work(run.id, (key) => (key === "f" ? "fail" : "succeed"));
      const [, app, ret] = await Promise.allSettled([
        completeExternalWorkflowStep(racers[0]!, {
          scope: ALL_ORGANIZATIONS,
          workflowRunId: run.id,
          stepKey: "window",
          terminalStatus: "SUCCEEDED",
        }),
        appended(run.id, racers[1]!),
        retry({ workflowRunId: run.id }, racers[2]!),
      ]);
      if (app.status === "rejected") {
        expect(["workflow.append_window_not_open", "workflow.release_conflict"]).toContain(app.reason.code);
      }
      if (ret.status === "rejected") expect(ret.reason.code).toBe("workflow.retry_run_live");
      await expectConsistent(run.id);
      await work(run.id);
      await expectConsistent(run.id);
    }
  });

  it("a completion racing the retry: the last running step's success lets it in, a stale one is fenced out", async () => {
    // f fails while s still runs: the run is live until s completes.
    const twoSteps = async () => {
      await work("none"); // finish what earlier cases left, so the claim below takes only this run's jobs
      const run = await enqueueWorkflowRun(
        db,
        WorkflowDagBuilder.new("r.pair", {}).job("f", "r.step", {}).job("s", "r.cleanup", {}).build(),
      );
      const jobs = await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 100 });
      const lease = (type: string) => {
        const job = jobs.find((j) => j.jobType === type && j.workflowRunId === run.id)!;
        return { jobId: job.id, runNumber: 1, attempt: 1, workerId: "w" };
      };
      await completeJobFailure(db, {
        lease: lease("r.step"),
        kind: "TERMINAL",
        code: "app.failed",
        message: "f failed",
      });
      return { run, s: lease("r.cleanup") };
    };

    // The completion commits while the retry waits for its job: the retry sees a finished run.
    const a = await twoSteps();
    const [completed, retried] = await interleave(
      (tx) => completeJobSuccess(tx, { lease: a.s }),
      () => retry({ workflowRunId: a.run.id }, racers[0]!),
    );
    expect(completed.status).toBe("fulfilled");
    expect(retried).toMatchObject({ status: "fulfilled", value: { outcome: "RETRIED" } });
    await expectConsistent(a.run.id);

    // Unordered: the retry is refused as live or applies after the completion; nothing else.
    for (let i = 0; i < 6; i++) {
      const { run, s } = await twoSteps();
      const [c, r] = await Promise.allSettled([
        completeJobSuccess(racers[i % 3]!, { lease: s }),
        retry({ workflowRunId: run.id }, racers[(i + 1) % 3]!),
      ]);
      expect(c.status).toBe("fulfilled");
      if (r.status === "rejected") expect(r.reason.code).toBe("workflow.retry_run_live");
      await expectConsistent(run.id);
    }

    // A stale worker whose lease expired (the reaper dead-lettered the job) reports success
    // around the retry: fenced out before, during and after it, and the next run is untouched.
    await work("none");
    const run = await enqueueWorkflowRun(db, WorkflowDagBuilder.new("r.stale", {}).job("f", "r.step", {}).build());
    const [job] = await claimJobs(db, { workerId: "slow", leaseSeconds: 60, limit: 1, jobTypes: ["r.step"] });
    expect(job!.workflowRunId).toBe(run.id);
    await expireLease(db, job!.id);
    expect((await reapExpiredLeases(db, { limit: 10, retryDelayMs: 1000 })).deadLettered).toHaveLength(1);
    const stale = { jobId: job!.id, runNumber: 1, attempt: 1, workerId: "slow" };
    const outcomes = await Promise.allSettled([
      completeJobSuccess(racers[0]!, { lease: stale }),
      retry({ workflowRunId: run.id }, racers[1]!),
      completeJobSuccess(racers[2]!, { lease: stale }),
    ]);
    expect(outcomes.map((o) => (o.status === "fulfilled" ? "ok" : o.reason.code))).toEqual([
      "job.lease_owner_mismatch",
      "ok",
      "job.lease_owner_mismatch",
    ]);
    expect(await getJobById(db, job!.id, ALL_ORGANIZATIONS)).toMatchObject({
      status: "PENDING",
      runNumber: 2,
      attempt: 0,
    });
    // The same worker claims the next run: attempt 1 again, but of run 2, so the old lease stays fenced.
    const [next] = await claimJobs(db, { workerId: "slow", leaseSeconds: 60, limit: 1, jobTypes: ["r.step"] });
    expect(next).toMatchObject({ id: job!.id, runNumber: 2, attempt: 1 });
    await expect(completeJobSuccess(db, { lease: stale })).rejects.toMatchObject({ code: "job.lease_owner_mismatch" });
    await completeJobSuccess(db, { lease: { ...stale, runNumber: 2 } });
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("SUCCEEDED");
    await expectConsistent(run.id);
  });
});
