// runledger through its public API, as an application would use it: a catalog, `enqueueJobs` for
// batches, `enqueueJob` for single jobs, `enqueueWorkflowRun` for DAGs and one Supervisor.
import { JobFailure, WorkflowDagBuilder } from "../../src/core/index.ts";
import { JobCatalog, JobsConfig, Supervisor } from "../../src/runtime/index.ts";
import { createDb, enqueueJob, enqueueJobs, enqueueWorkflowRun, migrate, setKeyLimit } from "../../src/store/index.ts";
import { type BenchSystem, FAN_OUT, type JobHandler, type SoakHandler, type StepHandler } from "../system.ts";

/**
 * Throughput settings: claim up to 500 jobs per round trip (the local queue graphile-worker
 * documents for speed, and what the raw-SQL ceiling uses); LISTEN wakes the worker, polling is
 * only the backstop. `JOBS_*` variables set in the environment win (`JobsConfig.fromEnv`), so
 * other settings can be tried without editing this file; concurrency always comes from the scenario.
 */
const CLAIM_BATCH_SIZE = 500;

function config(concurrency: number, fair = false, batch = CLAIM_BATCH_SIZE) {
  const env = JobsConfig.fromEnv();
  const claimBatchSize = process.env.JOBS_CLAIM_BATCH_SIZE?.trim() ? env.claimBatchSize : batch;
  return JobsConfig.from({
    ...env,
    claimBatchSize,
    maxGlobalConcurrency: concurrency,
    ...(fair ? { claimFairness: "organization" as const } : {}),
  });
}

/**
 * `pooled`: no named prepared statements, as behind a transaction-mode pooler (the `unprepared`
 * system); `max`: the pool size (default 10).
 */
export function runledgerSystem(url: string, options: { pooled?: boolean; max?: number } = {}): BenchSystem {
  const db = createDb(url, { pooled: options.pooled, max: options.max, listenUrl: options.pooled ? url : undefined });
  let onJob: JobHandler = () => {};
  let onStep: StepHandler = () => {};
  let onSoak: SoakHandler = () => false;
  let sweptRows = 0;
  const soakJob = async (payload: unknown, context: { attempt: number }) => {
    if (onSoak((payload as { k: number }).k, context.attempt)) {
      throw JobFailure.retryable("bench.soak_once", "fails once", { retryAfterMs: 50 });
    }
  };
  const catalog = new JobCatalog()
    .job("bench.soak", soakJob)
    .job("bench.soak_step", soakJob)
    .job("bench.noop", async (payload) => onJob((payload as { i: number }).i))
    .job("bench.step", async (payload) => {
      const { run, step } = payload as { run: number; step: string };
      onStep(run, step);
    });
  let supervisor: Supervisor | undefined;

  const start = (concurrency: number, overrides: Partial<JobsConfig> = {}, fair = false, batch?: number) => {
    supervisor = Supervisor.builder(db, JobsConfig.from({ ...config(concurrency, fair, batch), ...overrides }))
      .withCatalog(catalog)
      .build();
    supervisor.on("retention:purged", (e) => {
      sweptRows += e.rows;
    });
    supervisor.on("loop:error", (e) => console.error(`runledger ${e.loop} loop error:`, e.error));
    supervisor.start();
  };

  return {
    name: "runledger",
    pendingQuery: `select ((select count(*) from runledger.job_queue where status <> 'SUCCEEDED')
      + (select count(*) from runledger.workflow_runs where status <> 'SUCCEEDED'))::int as n`,
    async setup() {
      await migrate(db);
      await catalog.syncDefinitions(db);
    },
    async enqueueBatch(seqs) {
      await enqueueJobs(
        db,
        seqs.map((i) => ({ jobType: "bench.noop", payload: { i } })),
      );
    },
    async enqueueOne(seq) {
      await enqueueJob(db, { jobType: "bench.noop", payload: { i: seq } });
    },
    async startWorker(concurrency, handler) {
      onJob = handler;
      start(concurrency);
    },
    async stopWorker() {
      await supervisor?.shutdown(30_000);
      supervisor = undefined;
    },
    workflow: {
      async startWorker(concurrency, handler) {
        onStep = handler;
        start(concurrency);
      },
      async enqueueRun(run) {
        const fans = Array.from({ length: FAN_OUT }, (_, k) => `fan${k}`);
        let dag = WorkflowDagBuilder.new("bench.fanout", { run }).job("root", "bench.step", { run, step: "root" });
        for (const fan of fans) dag = dag.job(fan, "bench.step", { run, step: fan }).afterSuccess(fan, ["root"]);
        dag = dag.job("join", "bench.step", { run, step: "join" }).afterSuccess("join", fans);
        await enqueueWorkflowRun(db, dag.build());
      },
    },
    flow: {
      async enqueueKeyedBatch(seqs, keyOf) {
        await enqueueJobs(
          db,
          seqs.map((i) => ({ jobType: "bench.noop", payload: { i }, concurrencyKey: keyOf(i) })),
        );
      },
      async limitKeys(prefix, limit) {
        await setKeyLimit(db, { pattern: `${prefix}*`, maxConcurrency: limit });
      },
      async enqueueBatchFor(organizationId, seqs) {
        await enqueueJobs(
          db,
          seqs.map((i) => ({ jobType: "bench.noop", organizationId, payload: { i } })),
        );
      },
      async enqueueOneFor(organizationId, seq) {
        await enqueueJob(db, { jobType: "bench.noop", organizationId, payload: { i: seq } });
      },
      async startWorker(concurrency, handler, fair, claimBatchSize) {
        onJob = handler;
        start(concurrency, {}, fair, claimBatchSize);
      },
    },
    soak: {
      /**
       * Every outcome kept `retentionSeconds`, swept every 5 s in batches of 1,000 (`JOBS_RETENTION_*`
       * set in the environment win, as for the other settings).
       */
      async startWorker(concurrency, retentionSeconds, handler) {
        onSoak = handler;
        const env = (name: string, fallback: number) => (process.env[name]?.trim() ? undefined : fallback);
        const overrides = Object.fromEntries(
          Object.entries({
            retentionIntervalMs: env("JOBS_RETENTION_INTERVAL_SECONDS", 5000),
            retentionSucceededSeconds: env("JOBS_RETENTION_SUCCEEDED_SECONDS", retentionSeconds),
            retentionCanceledSeconds: env("JOBS_RETENTION_CANCELED_SECONDS", retentionSeconds),
            retentionDeadLetteredSeconds: env("JOBS_RETENTION_DEAD_LETTERED_SECONDS", retentionSeconds),
            retentionWorkflowRunSeconds: env("JOBS_RETENTION_WORKFLOW_RUN_SECONDS", retentionSeconds),
          }).filter(([, v]) => v !== undefined),
        );
        start(concurrency, overrides);
      },
      async enqueueJobs(keys) {
        await enqueueJobs(
          db,
          keys.map((k) => ({ jobType: "bench.soak", payload: { k } })),
        );
      },
      async enqueueRun(firstKey) {
        const fans = Array.from({ length: FAN_OUT }, (_, k) => `fan${k}`);
        let dag = WorkflowDagBuilder.new("bench.soak", {}).job("root", "bench.soak_step", { k: firstKey });
        fans.forEach((fan, i) => {
          dag = dag.job(fan, "bench.soak_step", { k: firstKey + 1 + i }).afterSuccess(fan, ["root"]);
        });
        dag = dag.job("join", "bench.soak_step", { k: firstKey + 1 + FAN_OUT }).afterSuccess("join", fans);
        await enqueueWorkflowRun(db, dag.build());
      },
      get sweptRows() {
        return sweptRows;
      },
    },
    async close() {
      await db.$runledger.close();
    },
  };
}
