import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { enqueueJobs, queryRows, type RunledgerDb } from "../../src/store/index.ts";
import type { Statement } from "../../src/store/query.ts";
import { claimRunnable, claimRunnableOfSize } from "../../src/store/sql/jobs/claim.ts";
import { failStatement, succeed } from "../../src/store/sql/jobs/complete.ts";
import { fenceValues } from "../../src/store/sql/jobs/fence.ts";
import { heartbeat } from "../../src/store/sql/jobs/lease.ts";
import { claimJobs } from "../../src/store/worker.ts";
import { setupEphemeralDatabase } from "../../src/testing/index.ts";
import { defineJob } from "../support/factories.ts";

/*
 * The worker's statements keep their shape whatever the planner knows: the writes that follow a
 * claim reach their rows through the primary key, never a scan of the leased jobs, with no
 * statistics at all and with statistics taken before anything was leased (the two ways a fresh
 * deploy meets them). Plans are the generic ones a prepared statement settles on.
 */
const teardowns: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const teardown of teardowns) await teardown();
});

async function leasedDatabase(
  analyzeFirst: boolean,
): Promise<{ db: RunledgerDb; leases: ReturnType<typeof leasesOf> }> {
  const { db, teardown } = await setupEphemeralDatabase({ max: 1 });
  teardowns.push(teardown);
  await db.execute(sql`alter table runledger.job_queue set (autovacuum_enabled = false)`);
  await defineJob(db, "plan.job");
  for (let i = 0; i < 20; i++) {
    await enqueueJobs(
      db,
      Array.from({ length: 1000 }, () => ({ jobType: "plan.job" })),
    );
  }
  if (analyzeFirst) await db.execute(sql`analyze runledger.job_queue`);
  const claimed = await claimJobs(db, { workerId: "w", leaseSeconds: 600, limit: 5000 });
  return { db, leases: leasesOf(claimed) };
}

function leasesOf(jobs: { id: string; runNumber: number; attempt: number }[]) {
  return jobs.map((job) => ({ jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: "w" }));
}

/** The generic plan of `statement` for these values, as text. */
async function genericPlan(db: RunledgerDb, statement: Statement<unknown>, values: Record<string, unknown>) {
  return db.transaction(async (tx) => {
    await tx.execute(sql`set local plan_cache_mode = force_generic_plan`);
    await tx.execute(sql.raw(`prepare plan_probe as ${statement.text}`));
    const params = statement.bind(values).map((value) => (value === null ? "null" : literal(value)));
    const rows = await queryRows<{ "QUERY PLAN": string }>(
      tx,
      sql.raw(`explain execute plan_probe(${params.join(", ")})`),
    );
    await tx.execute(sql`deallocate plan_probe`);
    return rows.map((row) => row["QUERY PLAN"]).join("\n");
  });
}

function literal(value: unknown): string {
  const text = Array.isArray(value) ? `{${value.join(",")}}` : String(value);
  return `'${text.replaceAll("'", "''")}'`;
}

/** Every access to job_queue in a plan, one line each. */
const queueAccesses = (plan: string) =>
  plan.split("\n").filter((line) => / on job_queue| on (idx_)?job_queue|job_queue_pkey/.test(line));

describe.each([
  ["no statistics", false],
  ["statistics taken before any job was leased", true],
])("plans with %s", (_, analyzeFirst) => {
  it("succeed, fail and heartbeat reach leased jobs by primary key only", async () => {
    const { db, leases } = await leasedDatabase(analyzeFirst);
    const batch = leases.slice(0, 1000);
    const plans = {
      succeed: await genericPlan(db, succeed, { ...fenceValues(batch), extras: null, plainOnly: true }),
      fail: await genericPlan(db, failStatement, {
        ...fenceValues(batch.slice(0, 1)),
        kind: "RETRYABLE",
        code: "x",
        message: "x",
        delayMs: 1000,
        requireLive: true,
        plainOnly: true,
      }),
      heartbeat: await genericPlan(db, heartbeat, { ...fenceValues(batch), leaseSeconds: 60 }),
    };
    for (const [name, plan] of Object.entries(plans)) {
      const accesses = queueAccesses(plan);
      expect(accesses.length, `${name}:\n${plan}`).toBeGreaterThan(0);
      for (const line of accesses) {
        expect(line, `${name}:\n${plan}`).not.toMatch(/Seq Scan|idx_job_queue_claim/);
      }
      expect(plan, name).toContain("job_queue_pkey");
      expect(plan, name).not.toMatch(/Seq Scan on workflow_steps/);
      if (process.env.SHOW_PLANS) console.log(name, plan);
    }
  });

  it.each([
    ["its limit a parameter", claimRunnable],
    ["a claim size written in", claimRunnableOfSize(480)],
  ])("the claim's update and step lookups use primary keys (%s)", async (_, statement) => {
    const { db } = await leasedDatabase(analyzeFirst);
    const plan = await genericPlan(db, statement, {
      jobTypes: ["plan.job"],
      limit: 500,
      workerId: "w2",
      leaseSeconds: 60,
      markRunning: true,
      prestart: false,
    });
    // The update is driven by the candidates' ids; candidates may come from the claim index or,
    // without statistics, a scan and a sort.
    expect(plan).toMatch(/Update on job_queue[\s\S]*job_queue_pkey/);
    expect(plan).toMatch(/Update on workflow_steps[\s\S]*workflow_steps_pkey/);
  });
});
