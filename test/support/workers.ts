import type { ChildProcess } from "node:child_process";
import { sql } from "drizzle-orm";
import { WorkflowDagBuilder } from "../../src/core/index.ts";
import { type Executor, enqueueJobs, enqueueWorkflowRun } from "../../src/store/index.ts";
import { finished, type ProcessResult, startTs } from "./processes.ts";

/** A `test/fixtures/worker-process.ts` child. */
export interface WorkerProcess {
  id: string;
  child: ChildProcess;
  /** Resolves once the process listens for SIGTERM. */
  ready: Promise<void>;
  exit: Promise<ProcessResult>;
}

/** Start a worker process (see the fixture for `options`). */
export function startWorkerProcess(
  url: string,
  id: string,
  concurrency: number,
  options: Record<string, number> = {},
): WorkerProcess {
  const child = startTs("test/fixtures/worker-process.ts", [url, id, String(concurrency), JSON.stringify(options)]);
  const exit = finished(child);
  const ready = new Promise<void>((resolve, reject) => {
    let seen = "";
    child.stdout?.on("data", (chunk) => {
      seen += chunk;
      if (seen.includes("ready\n")) resolve();
    });
    exit.then((r) => reject(new Error(`worker ${id} exited before it was ready: ${r.stderr}`)), reject);
  });
  ready.catch(() => {});
  return { id, child, ready, exit };
}

/** What a worker process printed on a clean exit: its shutdown report and runtime event counts. */
export interface WorkerExit {
  abandoned: string[];
  seen: Record<string, number>;
}

export function parseWorkerExit(result: ProcessResult): WorkerExit {
  const line = result.stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(line) as WorkerExit;
}

/** Sum runtime event counts over several processes. */
export function sumSeen(exits: readonly WorkerExit[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const exit of exits) for (const [key, n] of Object.entries(exit.seen)) total[key] = (total[key] ?? 0) + n;
  return total;
}

/** SIGKILL whatever is still running (afterAll/finally cleanup). */
export function killAll(workers: readonly WorkerProcess[]): void {
  for (const worker of workers)
    if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill("SIGKILL");
}

/** The tables `effect.once` and the probes write to. */
export async function createEffectTables(db: Executor): Promise<void> {
  await db.execute(sql`create schema if not exists runledger_test`);
  await db.execute(
    sql`create table runledger_test.executions (job_id uuid not null, attempt int not null, worker_id text not null)`,
  );
  await db.execute(sql`create table runledger_test.effects_once (job_id uuid primary key)`);
  await db.execute(
    sql`create table runledger_test.probes (job_id uuid not null, worker_id text not null, reason text not null)`,
  );
}

/** Enqueue `plain` jobs and `runs` fan-out/fan-in workflows (root → 5 leaves → final: 7 jobs each). */
export async function enqueueEffectMix(db: Executor, jobType: string, plain: number, runs: number): Promise<number> {
  for (let i = 0; i < plain; i += 1000) {
    await enqueueJobs(
      db,
      Array.from({ length: Math.min(1000, plain - i) }, () => ({ jobType })),
    );
  }
  const leaves = ["leaf-0", "leaf-1", "leaf-2", "leaf-3", "leaf-4"];
  for (let r = 0; r < runs; r++) {
    const builder = WorkflowDagBuilder.new("effect.flow", {}).job("root", jobType, {});
    for (const leaf of leaves) builder.job(leaf, jobType, {}).afterSuccess(leaf, ["root"]);
    await enqueueWorkflowRun(db, builder.job("final", jobType, {}).afterSuccess("final", leaves).build());
  }
  return plain + runs * 7;
}
