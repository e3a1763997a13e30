import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ALL_ORGANIZATIONS,
  ERROR_CATALOG,
  MAX_JSON_BYTES,
  MAX_JSON_DEPTH,
  MAX_WORKFLOW_STEPS,
  RunledgerError,
} from "../../src/core/index.ts";
import {
  appendWorkflowSteps,
  enqueueJob,
  enqueueWorkflowRun,
  queryRows,
  upsertJobSchedule,
} from "../../src/store/index.ts";
import { claimJobs, type LeaseIdentity } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";
import { after, chain, external, hostileCorpus, MARKER, nested, ok, run, SQLI, step, T0 } from "./hostile-corpus.ts";

/*
 * Hostile input corpus (`hostile-corpus.ts`): every entry must be refused with its exact code, write nothing to any
 * runledger table (row contents compared, not just counts), and say nothing in its message
 * that came from the request or from SQL.
 */

const { db } = await useTestDatabase();

let runId = "";
let lease: LeaseIdentity;

beforeAll(async () => {
  await defineJob(db, "hostile.ok");
  await defineJob(db, "hostile.any");
  await defineJob(db, "hostile.disabled", { isEnabled: false });
  await enqueueJob(db, { jobType: "hostile.ok", payload: { n: 1 }, idempotencyKey: "taken" });
  await enqueueWorkflowRun(db, run([step("a")], { idempotencyKey: "taken" }));
  runId = (await enqueueWorkflowRun(db, run([external("window"), step("after", { dependencies: after("window") })])))
    .id;
  await appendWorkflowSteps(db, {
    scope: ALL_ORGANIZATIONS,
    workflowRunId: runId,
    mutationKey: "taken",
    appendWindowStepKey: "window",
    steps: [step("appended")],
  });
  await upsertJobSchedule(db, { name: "nightly", jobType: "hostile.ok", cronExpr: "0 0 0 * * *", nextFireAt: T0 });
  await upsertJobSchedule(db, {
    name: "paused-disabled",
    jobType: "hostile.disabled",
    cronExpr: "0 0 0 * * *",
    nextFireAt: T0,
    isActive: false,
  });
  await enqueueJob(db, { jobType: "hostile.any", payload: {} });
  const [claimed] = await claimJobs(db, {
    workerId: "w-hostile",
    leaseSeconds: 600,
    limit: 1,
    jobTypes: ["hostile.any"],
  });
  lease = { jobId: claimed!.id, runNumber: claimed!.runNumber, attempt: claimed!.attempt, workerId: "w-hostile" };
});

/** Every runledger table's rows, hashed: equal snapshots mean nothing was inserted, updated or deleted. */
async function snapshot(): Promise<Record<string, string>> {
  const tables = await queryRows<{ name: string }>(
    db,
    sql`select table_name as name from information_schema.tables
      where table_schema = 'runledger' and table_type = 'BASE TABLE' order by 1`,
  );
  const out: Record<string, string> = {};
  for (const { name } of tables) {
    const [row] = await queryRows<{ n: number; h: string | null }>(
      db,
      sql`select count(*)::int as n, md5(string_agg(t::text, ',' order by t::text)) as h
        from ${sql.identifier("runledger")}.${sql.identifier(name)} t`,
    );
    out[name] = `${row!.n}:${row!.h ?? ""}`;
  }
  return out;
}

const corpus = hostileCorpus({ db, runId: () => runId, lease: () => lease });

/** SQL and internals a client-facing message must never contain. */
const FORBIDDEN = [/select/i, /insert/i, /update /i, /delete/i, /runledger\./i, /jsonb/i, /\$\d/, /drop table/i];

async function refusal(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  return undefined;
}

const HOSTILE_INPUT_COUNT = corpus.reduce((n, [, cases]) => n + cases.length, 0);

describe(`hostile input corpus (${HOSTILE_INPUT_COUNT} inputs)`, () => {
  for (const [group, cases] of corpus) {
    describe(group, () => {
      it.each(cases)("%s → %s", async (_name, code, call) => {
        const before = await snapshot();
        const error = await refusal(call);
        expect(error, "the call must be refused").toBeInstanceOf(RunledgerError);
        const refused = error as RunledgerError;
        expect(refused.code).toBe(code);
        // The message is the catalog's fixed text: nothing from the request or the query.
        expect(refused.message).toBe(ERROR_CATALOG[code][1]);
        for (const pattern of FORBIDDEN) expect(refused.message).not.toMatch(pattern);
        const client = JSON.stringify(refused.toJSON());
        expect(client).not.toContain(MARKER);
        expect(client).not.toMatch(/insert into|select \*|jsonb_to_recordset/i);
        expect(await snapshot()).toEqual(before);
      });
    });
  }
});

describe("SQL-looking strings are data", () => {
  it("a job type and an idempotency key made of SQL are stored verbatim and the tables survive", async () => {
    await defineJob(db, SQLI);
    const first = await enqueueJob(db, { jobType: SQLI, payload: { q: SQLI }, idempotencyKey: SQLI, priority: -5 });
    const again = await enqueueJob(db, { jobType: SQLI, payload: { q: SQLI }, idempotencyKey: SQLI, priority: -5 });
    expect(again).toEqual({ id: first.id, created: false });
    const [row] = await queryRows<{ job_type: string; idempotency_key: string; payload: unknown; priority: number }>(
      db,
      sql`select job_type, idempotency_key, payload, priority from runledger.job_queue where id = ${first.id}`,
    );
    expect(row).toEqual({ job_type: SQLI, idempotency_key: SQLI, payload: { q: SQLI }, priority: -5 });
  });

  it("a payload at the limits is accepted: 1 MiB and 100 levels deep", async () => {
    const big = { blob: "x".repeat(MAX_JSON_BYTES - '{"blob":""}'.length) };
    expect(Buffer.byteLength(JSON.stringify(big))).toBe(MAX_JSON_BYTES);
    await expect(enqueueJob(db, { ...ok, payload: big })).resolves.toMatchObject({ created: true });
    await expect(enqueueJob(db, { ...ok, payload: nested(MAX_JSON_DEPTH, "array") })).resolves.toMatchObject({
      created: true,
    });
  });

  it("a workflow of exactly 1,000 steps is accepted", async () => {
    const created = await enqueueWorkflowRun(db, run(chain(MAX_WORKFLOW_STEPS)));
    const [row] = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from runledger.workflow_steps where workflow_run_id = ${created.id}`,
    );
    expect(row!.n).toBe(MAX_WORKFLOW_STEPS);
  });
});
