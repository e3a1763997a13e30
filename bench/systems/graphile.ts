// graphile-worker with the settings its performance page documents for throughput: a local queue
// of 500 jobs and batched completion and failure with zero delay. Completed jobs are deleted, so
// anything left in its jobs table is pending.
import { Logger, makeWorkerUtils, type Runner, run, runMigrations, type WorkerUtils } from "graphile-worker";
import type { BenchSystem, JobHandler } from "../system.ts";

// Only warnings and errors reach stderr; info lines per job would cost time and drown the output.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`graphile-worker ${level}: ${message}`);
});

const FAST = { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 };

export function graphileSystem(url: string): BenchSystem {
  let utils: WorkerUtils | undefined;
  let runner: Runner | undefined;
  return {
    name: "graphile",
    pendingQuery: "select count(*)::int as n from graphile_worker._private_jobs",
    async setup() {
      await runMigrations({ connectionString: url, logger });
      utils = await makeWorkerUtils({ connectionString: url, logger });
    },
    async enqueueBatch(seqs) {
      await utils!.addJobs(seqs.map((i) => ({ identifier: "noop", payload: { i } })));
    },
    async enqueueOne(seq) {
      await utils!.addJob("noop", { i: seq });
    },
    async startWorker(concurrency: number, handler: JobHandler) {
      runner = await run({
        connectionString: url,
        concurrency,
        // The documented advice: 10 or concurrency + 2, whichever is larger.
        maxPoolSize: Math.max(10, concurrency + 2),
        noHandleSignals: true,
        logger,
        crontab: "",
        taskList: {
          noop: async (payload) => handler((payload as { i: number }).i),
        },
        preset: { worker: FAST },
      });
    },
    async stopWorker() {
      await runner?.stop();
      await runner?.promise;
      runner = undefined;
    },
    async close() {
      await utils?.release();
    },
  };
}
