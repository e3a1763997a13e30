import { sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import {
  ALL_ORGANIZATIONS,
  RunledgerError,
  WorkflowRunEnqueueBuilder,
  WorkflowStepEnqueueBuilder,
} from "../../src/core/index.ts";
import { JobCatalog } from "../../src/runtime/index.ts";
import {
  enqueueJob,
  enqueueJobs,
  enqueueWorkflowRun,
  getFlowControlState,
  getJobById,
  pauseJobType,
  queryRows,
  removeKeyLimit,
  resumeJobType,
  setJobTypeLimits,
  setKeyLimit,
} from "../../src/store/index.ts";
import { claimJobs, claimRunnableJobs, completeJobSuccess, type FlowClaimMemo } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";

const { db } = await useTestDatabase();

const ORG_A = "0190f0a0-0000-7000-8000-0000000000a1";
const ORG_B = "0190f0a0-0000-7000-8000-0000000000b1";

beforeEach(async () => {
  await db.execute(sql`truncate runledger.job_queue, runledger.job_definitions, runledger.flow_slots,
    runledger.flow_rate_starts, runledger.flow_key_limits, runledger.job_event_log cascade`);
  await defineJob(db, "flow.a");
  await defineJob(db, "flow.b");
});

const claim = (limit: number, extra: Partial<Parameters<typeof claimJobs>[1]> = {}) =>
  claimJobs(db, { workerId: "w", leaseSeconds: 60, limit, ...extra });

async function statuses(): Promise<Record<string, number>> {
  const rows = await queryRows<{ status: string; n: number }>(
    db,
    sql`select status, count(*)::int as n from runledger.job_queue group by status`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

describe("pause and resume", () => {
  it("a paused type is not claimed, keeps its attempts, and is claimed again after resume", async () => {
    await enqueueJobs(db, [{ jobType: "flow.a" }, { jobType: "flow.a" }, { jobType: "flow.b" }]);
    const paused = await pauseJobType(db, { jobType: "flow.a" });
    expect(paused.pausedAt).toBeInstanceOf(Date);
    const first = await claim(10);
    expect(first.map((j) => j.jobType)).toEqual(["flow.b"]);
    expect(await claim(10)).toEqual([]);
    const rows = await queryRows<{ attempt: number; status: string }>(
      db,
      sql`select attempt, status from runledger.job_queue where job_type = 'flow.a'`,
    );
    expect(rows).toEqual([
      { attempt: 0, status: "PENDING" },
      { attempt: 0, status: "PENDING" },
    ]);
    const resumed = await resumeJobType(db, { jobType: "flow.a" });
    expect(resumed.pausedAt).toBeNull();
    expect((await claim(10)).map((j) => j.jobType)).toEqual(["flow.a", "flow.a"]);
  });

  it("unknown types are refused with a code", async () => {
    await expect(pauseJobType(db, { jobType: "flow.nope" })).rejects.toMatchObject({
      code: "job.definition_not_found",
    });
    await expect(resumeJobType(db, { jobType: "flow.nope" })).rejects.toBeInstanceOf(RunledgerError);
  });
});

describe("concurrency limits", () => {
  it("a type's maxConcurrency holds; finishing frees a slot", async () => {
    await enqueueJobs(
      db,
      Array.from({ length: 5 }, () => ({ jobType: "flow.a" })),
    );
    await setJobTypeLimits(db, { jobType: "flow.a", maxConcurrency: 2 });
    const memo: FlowClaimMemo = { active: false };
    const first = await claim(10, { flowMemo: memo });
    expect(first).toHaveLength(2);
    expect(memo.active).toBe(true);
    expect(await claim(10)).toEqual([]);
    await completeJobSuccess(db, { lease: { jobId: first[0]!.id, workerId: "w", runNumber: 1, attempt: 1 } });
    expect(await claim(10)).toHaveLength(1);
    expect(await statuses()).toEqual({ PENDING: 2, LEASED: 2, SUCCEEDED: 1 });
  });

  it("per-key limits of a type, and key patterns across types", async () => {
    await enqueueJobs(db, [
      ...Array.from({ length: 4 }, () => ({ jobType: "flow.a", concurrencyKey: "k1" })),
      ...Array.from({ length: 4 }, () => ({ jobType: "flow.a", concurrencyKey: "k2" })),
      ...Array.from({ length: 4 }, () => ({ jobType: "flow.a" })),
    ]);
    await setJobTypeLimits(db, { jobType: "flow.a", maxConcurrencyPerKey: 1 });
    const claimed = await claim(100);
    expect(claimed.map((j) => (j as { id: string }).id)).toHaveLength(6);
    await setJobTypeLimits(db, { jobType: "flow.a", maxConcurrencyPerKey: null });
    await enqueueJobs(db, [...Array.from({ length: 3 }, () => ({ jobType: "flow.b", concurrencyKey: "tenant:1" }))]);
    await setKeyLimit(db, { pattern: "tenant:*", maxConcurrency: 2 });
    await setKeyLimit(db, { pattern: "k1", maxConcurrency: 1 });
    await setKeyLimit(db, { pattern: "k2", maxConcurrency: 3 });
    const more = await claim(100);
    // k1 is full (1 running), k2 has 2 more, tenant:1 gets 2.
    const keys = await queryRows<{ key: string; n: number }>(
      db,
      sql`select concurrency_key as key, count(*)::int as n from runledger.job_queue
        where status = 'LEASED' and concurrency_key is not null group by 1 order by 1`,
    );
    expect(keys).toEqual([
      { key: "k1", n: 1 },
      { key: "k2", n: 3 },
      { key: "tenant:1", n: 2 },
    ]);
    expect(more).toHaveLength(4);
    const state = await getFlowControlState(db);
    expect(state.keyLimits.map((k) => k.pattern)).toEqual(["k1", "k2", "tenant:*"]);
    expect(state.scopes.find((s) => s.key === "tenant:1")).toMatchObject({ kind: "key", running: 2 });
    await removeKeyLimit(db, { pattern: "tenant:*" });
    expect(await claim(100)).toHaveLength(1);
  });

  it("a limit set while jobs run counts them", async () => {
    await enqueueJobs(
      db,
      Array.from({ length: 4 }, () => ({ jobType: "flow.a", concurrencyKey: "x" })),
    );
    expect(await claim(3)).toHaveLength(3);
    await setKeyLimit(db, { pattern: "x", maxConcurrency: 3 });
    expect(await claim(10)).toEqual([]);
  });

  it("invalid limits write nothing", async () => {
    await expect(setJobTypeLimits(db, { jobType: "flow.a", maxConcurrency: 0 })).rejects.toMatchObject({
      code: "flow.invalid_limit",
    });
    await expect(
      setJobTypeLimits(db, { jobType: "flow.a", rateLimit: { limit: 1, intervalMs: -1 } }),
    ).rejects.toMatchObject({ code: "flow.invalid_limit" });
    await expect(setKeyLimit(db, { pattern: "p" })).rejects.toMatchObject({ code: "flow.invalid_limit" });
    await expect(enqueueJob(db, { jobType: "flow.a", concurrencyKey: " " })).rejects.toMatchObject({
      code: "job.invalid_enqueue_request",
    });
    expect((await getFlowControlState(db)).jobTypes).toEqual([]);
  });
});

describe("job keys and concurrency keys", () => {
  const keyOf = async (id: string) =>
    (
      await queryRows<{ key: string | null }>(
        db,
        sql`select concurrency_key as key from runledger.job_queue where id = ${id}`,
      )
    )[0]!.key;

  it("a replace or debounce takes the request's concurrency key, and its limit holds", async () => {
    const first = await enqueueJob(db, {
      jobType: "flow.a",
      payload: { v: 1 },
      concurrencyKey: "acct:1",
      jobKey: { key: "sync" },
    });
    const replaced = await enqueueJob(db, {
      jobType: "flow.a",
      payload: { v: 2 },
      concurrencyKey: "acct:2",
      jobKey: { key: "sync" },
    });
    expect(replaced).toEqual({ id: first.id, created: false });
    expect(await keyOf(first.id)).toBe("acct:2");
    await enqueueJob(db, {
      jobType: "flow.a",
      payload: { v: 3 },
      concurrencyKey: "acct:3",
      jobKey: { key: "sync", mode: "debounce", delayMs: 0 },
    });
    expect(await keyOf(first.id)).toBe("acct:3");
    // A request without a key keeps the job's (a replace never lifts a limit off a job).
    await enqueueJob(db, { jobType: "flow.a", payload: { v: 4 }, jobKey: { key: "sync" } });
    expect(await keyOf(first.id)).toBe("acct:3");
    // `preserve` keeps the job as it is.
    await enqueueJob(db, { jobType: "flow.a", concurrencyKey: "acct:9", jobKey: { key: "sync", mode: "preserve" } });
    expect(await keyOf(first.id)).toBe("acct:3");
    // The limit applies to the key the job holds now.
    await enqueueJob(db, { jobType: "flow.b", concurrencyKey: "acct:3" });
    await setKeyLimit(db, { pattern: "acct:3", maxConcurrency: 1 });
    expect(await claim(10)).toHaveLength(1);
  });

  it("a batch with job keys replaces the key too", async () => {
    const [first] = await enqueueJobs(db, [{ jobType: "flow.a", concurrencyKey: "t:1", jobKey: { key: "b" } }]);
    await enqueueJobs(db, [{ jobType: "flow.b" }, { jobType: "flow.a", concurrencyKey: "t:2", jobKey: { key: "b" } }]);
    expect(await keyOf(first!.id)).toBe("t:2");
  });
});

describe("rate limits", () => {
  it("at most N starts per interval", async () => {
    await enqueueJobs(
      db,
      Array.from({ length: 5 }, () => ({ jobType: "flow.a" })),
    );
    await setJobTypeLimits(db, { jobType: "flow.a", rateLimit: { limit: 2, intervalMs: 60_000 } });
    const first = await claim(10);
    expect(first).toHaveLength(2);
    for (const job of first)
      await completeJobSuccess(db, { lease: { jobId: job.id, workerId: "w", runNumber: 1, attempt: 1 } });
    expect(await claim(10)).toEqual([]);
    // A minute on, the starts have left the window.
    expect(await claim(10, { now: new Date(Date.now() + 61_000) })).toHaveLength(2);
  });

  it("counts a start in the window at the clock it is read at", async () => {
    await enqueueJobs(db, [{ jobType: "flow.a" }, { jobType: "flow.a" }]);
    await setJobTypeLimits(db, { jobType: "flow.a", rateLimit: { limit: 1, intervalMs: 60_000 } });
    expect(await claim(10)).toHaveLength(1);
    const starts = async (now?: Date) =>
      (await getFlowControlState(db, { now })).scopes.find((s) => s.kind === "jobType")?.recentStarts ?? 0;
    expect(await starts()).toBe(1);
    expect(await starts(new Date(Date.now() + 30_000))).toBe(1);
    expect(await starts(new Date(Date.now() + 61_000))).toBe(0);
    // A claim counts the window at its own clock: half a minute on the start still counts, a minute on not.
    expect(await claim(10, { now: new Date(Date.now() + 30_000) })).toEqual([]);
    expect(await claim(10, { now: new Date(Date.now() + 61_000) })).toHaveLength(1);
    expect(await starts(new Date(Date.now() + 90_000))).toBe(1);
    await expect(claim(1, { now: new Date(Number.NaN) })).rejects.toMatchObject({ code: "job.invalid_pagination" });
    await expect(getFlowControlState(db, { now: new Date(Number.NaN) })).rejects.toMatchObject({
      code: "job.invalid_pagination",
    });
  });
});

describe("clock", () => {
  it("claims under flow control as of the claim's now: a job due in ten minutes goes at eleven", async () => {
    await pauseJobType(db, { jobType: "flow.b" });
    const job = await enqueueJob(db, { jobType: "flow.a", nextRunAt: new Date(Date.now() + 10 * 60_000) });
    expect(await claim(10)).toEqual([]);
    expect(await claim(10, { fairness: "organization" })).toEqual([]);
    const later = new Date(Date.now() + 11 * 60_000);
    expect((await claim(10, { now: later })).map((j) => j.id)).toEqual([job.id]);
  });
});

describe("fairness", () => {
  it("shares a claim across organizations", async () => {
    await enqueueJobs(
      db,
      Array.from({ length: 20 }, () => ({ jobType: "flow.a", organizationId: ORG_A })),
    );
    await enqueueJobs(
      db,
      Array.from({ length: 2 }, () => ({ jobType: "flow.a", organizationId: ORG_B })),
    );
    const strict = await claim(4);
    expect(strict.every((j) => j.organizationId === ORG_A)).toBe(true);
    const fair = await claimRunnableJobs(db, { workerId: "w", leaseSeconds: 60, limit: 4, fairness: "organization" });
    expect(fair.filter((j) => j.organizationId === ORG_B)).toHaveLength(2);
    const job = await getJobById(db, fair[0]!.id, ALL_ORGANIZATIONS);
    expect(job?.status).toBe("LEASED");
  });
});

describe("fairness for a claimer with a memo (windows of the queue)", () => {
  const fairClaim = (memo: FlowClaimMemo) =>
    claimRunnableJobs(db, { workerId: "w", leaseSeconds: 60, limit: 4, fairness: "organization", flowMemo: memo });
  const many = (n: number, organizationId: string) =>
    enqueueJobs(
      db,
      Array.from({ length: n }, () => ({ jobType: "flow.a", organizationId })),
    );

  it("a new arrival behind a backlog longer than the head window is claimed at the next fair claim", async () => {
    await many(2000, ORG_A);
    await many(2, ORG_B);
    const fair = await fairClaim({ active: false });
    expect(fair.filter((j) => j.organizationId === ORG_B)).toHaveLength(2);
  });

  it("the sweep reaches a job in neither the head nor the newest window, then wraps", async () => {
    // Windows of 1,000 jobs (the claim's head: 272): B's job is the 1,501st of 2,901.
    await many(1500, ORG_A);
    const [b] = await many(1, ORG_B);
    await many(1400, ORG_A);
    const memo: FlowClaimMemo = { active: false };
    const first = await fairClaim(memo);
    expect(first.map((j) => j.organizationId)).toEqual([ORG_A, ORG_A, ORG_A, ORG_A]);
    expect(memo.fairSweep).toBeDefined();
    const second = await fairClaim(memo);
    expect(second.map((j) => j.id)).toContain(b!.id);
    await fairClaim(memo);
    // The third window held the last 901 jobs: the next sweep starts over.
    expect(memo.fairSweep).toBeUndefined();
  });
});

describe("concurrency keys on workflow steps and catalog enqueues", () => {
  it("a step's key reaches its job and its limit holds", async () => {
    const run = WorkflowRunEnqueueBuilder.new("flow.wf" as never, {})
      .step(WorkflowStepEnqueueBuilder.tryJob("s1", "flow.a", {}).concurrencyKey("acct:1").build())
      .step(WorkflowStepEnqueueBuilder.tryJob("s2", "flow.a", {}).concurrencyKey("acct:1").build())
      .step(WorkflowStepEnqueueBuilder.tryJob("s3", "flow.a", {}).build())
      .build();
    await enqueueWorkflowRun(db, run);
    await setKeyLimit(db, { pattern: "acct:*", maxConcurrency: 1 });
    const claimed = await claim(10);
    expect(claimed).toHaveLength(2);
    const keys = await queryRows<{ key: string | null }>(
      db,
      sql`select concurrency_key as key from runledger.job_queue order by concurrency_key nulls last`,
    );
    expect(keys).toEqual([{ key: "acct:1" }, { key: "acct:1" }, { key: null }]);
  });

  it("a blank step key is refused by the builder", () => {
    expect(() => WorkflowStepEnqueueBuilder.tryJob("s1", "flow.a", {}).concurrencyKey(" ").build()).toThrow();
  });

  it("catalog.enqueue passes the key", async () => {
    const catalog = new JobCatalog().job("flow.a", async () => {});
    const { id } = await catalog.enqueue(db, "flow.a", {}, { concurrencyKey: "c:1" });
    const [row] = await queryRows<{ key: string }>(
      db,
      sql`select concurrency_key as key from runledger.job_queue where id = ${id}`,
    );
    expect(row?.key).toBe("c:1");
  });
});
