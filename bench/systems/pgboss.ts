// pg-boss with batch fetch: each of `concurrency` workers fetches BATCH_SIZE jobs per round trip,
// runs them one after another and completes the batch in one statement; `burstWhenBatchFull`
// fetches again at once while batches come back full, and LISTEN/NOTIFY (opt-in per queue) wakes
// idle workers. Workflows use pg-boss's own `flow()` (jobs with `dependsOn`), whose background
// resolver releases dependents every `flowIntervalSeconds` (1 s, the smallest it accepts).
import { PgBoss } from "pg-boss";
import { type BenchSystem, FAN_OUT, type JobHandler, type StepHandler } from "../system.ts";

const BATCH_SIZE = 10;
const QUEUE = "noop";
const STEPS = "steps";

export function pgbossSystem(url: string): BenchSystem {
  const boss = new PgBoss({ connectionString: url, useListenNotify: true, flowIntervalSeconds: 1 });
  boss.on("error", (error) => console.error("pg-boss error:", error));

  const work = async (queue: string, concurrency: number, onData: (data: Record<string, unknown>) => void) => {
    await boss.work(
      queue,
      {
        localConcurrency: concurrency,
        batchSize: BATCH_SIZE,
        burstWhenBatchFull: true,
        pollingIntervalSeconds: 0.5,
        notifyPollingIntervalSeconds: 0.5,
      },
      async (jobs) => {
        for (const job of jobs) onData(job.data as Record<string, unknown>);
      },
    );
  };

  return {
    name: "pgboss",
    pendingQuery: "select count(*)::int as n from pgboss.job where state <> 'completed'",
    async setup() {
      await boss.start();
      await boss.createQueue(QUEUE, { notify: true });
      await boss.createQueue(STEPS, { notify: true });
    },
    async enqueueBatch(seqs) {
      await boss.insert(
        QUEUE,
        seqs.map((i) => ({ data: { i } })),
      );
    },
    async enqueueOne(seq) {
      await boss.send(QUEUE, { i: seq });
    },
    async startWorker(concurrency: number, handler: JobHandler) {
      await work(QUEUE, concurrency, (data) => handler(data.i as number));
    },
    async stopWorker() {
      await boss.offWork(QUEUE, { wait: true });
      await boss.offWork(STEPS, { wait: true });
    },
    workflow: {
      async startWorker(concurrency: number, onStep: StepHandler) {
        await work(STEPS, concurrency, (data) => onStep(data.run as number, data.step as string));
      },
      async enqueueRun(run: number) {
        const fans = Array.from({ length: FAN_OUT }, (_, k) => `fan${k}`);
        await boss.flow([
          { ref: "root", name: STEPS, data: { run, step: "root" } },
          ...fans.map((fan) => ({ ref: fan, name: STEPS, data: { run, step: fan }, dependsOn: ["root"] })),
          { ref: "join", name: STEPS, data: { run, step: "join" }, dependsOn: fans },
        ]);
      },
    },
    async close() {
      await boss.stop({ graceful: true, timeout: 10_000 });
    },
  };
}
