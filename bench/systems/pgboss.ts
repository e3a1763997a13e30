// pg-boss with batch fetch: each of `concurrency` workers fetches BATCH_SIZE jobs per round trip,
// runs them one after another and completes the batch in one statement; `burstWhenBatchFull`
// fetches again at once while batches come back full, and LISTEN/NOTIFY (opt-in per queue) wakes
// idle workers.
//
// Workflows, two ways (BENCH_PGBOSS_WORKFLOW):
// - `flow` (default): pg-boss's own `flow()`, jobs with `dependsOn`; its background resolver
//   releases dependents every `flowIntervalSeconds` (1 s, the smallest it accepts).
// - `chain`: what a user without flows writes: the root's handler sends the 20 fan jobs, each fan
//   job counts itself in a table of its own with one upsert, and the one that makes it 20 sends
//   the join job.
import { PgBoss } from "pg-boss";
import { type BenchSystem, FAN_OUT, type JobHandler, type StepHandler } from "../system.ts";

const BATCH_SIZE = 10;
const QUEUE = "noop";
const STEPS = "steps";
const MODE = process.env.BENCH_PGBOSS_WORKFLOW === "chain" ? "chain" : "flow";
const FANS = Array.from({ length: FAN_OUT }, (_, k) => `fan${k}`);

export function pgbossSystem(url: string): BenchSystem {
  const boss = new PgBoss({ connectionString: url, useListenNotify: true, flowIntervalSeconds: 1 });
  boss.on("error", (error) => console.error("pg-boss error:", error));

  const work = async (
    queue: string,
    concurrency: number,
    onData: (data: Record<string, unknown>) => void | Promise<void>,
  ) => {
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
        for (const job of jobs) await onData(job.data as Record<string, unknown>);
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
      if (MODE === "chain") {
        await boss
          .getDb()
          .executeSql("create table if not exists bench_fanin (run int primary key, done int not null)");
      }
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
        await work(STEPS, concurrency, async (data) => {
          const run = data.run as number;
          const step = data.step as string;
          onStep(run, step);
          if (MODE === "flow" || step === "join") return;
          if (step === "root") {
            await boss.insert(
              STEPS,
              FANS.map((fan) => ({ data: { run, step: fan } })),
            );
            return;
          }
          const { rows } = await boss
            .getDb()
            .executeSql(
              "insert into bench_fanin (run, done) values ($1, 1) on conflict (run) do update set done = bench_fanin.done + 1 returning done",
              [run],
            );
          if (rows[0]?.done === FAN_OUT) await boss.send(STEPS, { run, step: "join" });
        });
      },
      async enqueueRun(run: number) {
        if (MODE === "chain") {
          await boss.send(STEPS, { run, step: "root" });
          return;
        }
        await boss.flow([
          { ref: "root", name: STEPS, data: { run, step: "root" } },
          ...FANS.map((fan) => ({ ref: fan, name: STEPS, data: { run, step: fan }, dependsOn: ["root"] })),
          { ref: "join", name: STEPS, data: { run, step: "join" }, dependsOn: FANS },
        ]);
      },
    },
    async close() {
      await boss.stop({ graceful: true, timeout: 10_000 });
    },
  };
}
