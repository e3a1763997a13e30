// runledger through its public API, as an application would use it: a catalog, `enqueueJobs` for
// batches, `enqueueJob` for single jobs, `enqueueWorkflowRun` for DAGs and one Supervisor.
import { WorkflowDagBuilder } from "../../src/core/index.ts";
import { JobCatalog, JobsConfig, Supervisor } from "../../src/runtime/index.ts";
import { createDb, enqueueJob, enqueueJobs, enqueueWorkflowRun, migrate } from "../../src/store/index.ts";
import { type BenchSystem, FAN_OUT, type JobHandler, type StepHandler } from "../system.ts";

/**
 * Throughput settings: claim up to 500 jobs per round trip (the local queue graphile-worker
 * documents for speed, and what the raw-SQL ceiling uses); LISTEN wakes the worker, polling is
 * only the backstop. `JOBS_*` variables set in the environment win (`JobsConfig.fromEnv`), so
 * other settings can be tried without editing this file; concurrency always comes from the scenario.
 */
const CLAIM_BATCH_SIZE = 500;

function config(concurrency: number) {
  const env = JobsConfig.fromEnv();
  const claimBatchSize = process.env.JOBS_CLAIM_BATCH_SIZE?.trim() ? env.claimBatchSize : CLAIM_BATCH_SIZE;
  return JobsConfig.from({ ...env, claimBatchSize, maxGlobalConcurrency: concurrency });
}

/**
 * `pooled`: no named prepared statements, as behind a transaction-mode pooler (the `unprepared`
 * system); `max`: the pool size (default 10).
 */
export function runledgerSystem(url: string, options: { pooled?: boolean; max?: number } = {}): BenchSystem {
  const db = createDb(url, { pooled: options.pooled, max: options.max, listenUrl: options.pooled ? url : undefined });
  let onJob: JobHandler = () => {};
  let onStep: StepHandler = () => {};
  const catalog = new JobCatalog()
    .job("bench.noop", async (payload) => onJob((payload as { i: number }).i))
    .job("bench.step", async (payload) => {
      const { run, step } = payload as { run: number; step: string };
      onStep(run, step);
    });
  let supervisor: Supervisor | undefined;

  const start = (concurrency: number) => {
    supervisor = Supervisor.builder(db, config(concurrency)).withCatalog(catalog).build();
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
    async close() {
      await db.$runledger.close();
    },
  };
}
