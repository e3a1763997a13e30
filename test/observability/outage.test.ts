import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { enqueueJobs, queryRows } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";
import { Relay } from "../support/relay.ts";
import { waitFor } from "../support/wait.ts";
import {
  createEffectTables,
  killAll,
  parseWorkerExit,
  startWorkerProcess,
  type WorkerProcess,
} from "../support/workers.ts";

// The worker reaches PostgreSQL through a TCP relay of this test's own; stopping the relay is a
// database that disappears (connections reset, new ones refused) without touching the server.
const OUTAGE_MS = 20_000;
const BEFORE = 600;
const DURING = 100;

const { db, url } = await useTestDatabase();
const relay = Relay.to(url);
const workers: WorkerProcess[] = [];
afterAll(async () => {
  killAll(workers);
  await relay.stop();
});

async function unfinished(): Promise<number> {
  const [row] = await queryRows<{ n: number }>(
    db,
    sql`select count(*)::int as n from runledger.job_queue where job_type = 'effect.once' and status <> 'SUCCEEDED'`,
  );
  return row!.n;
}

async function effects(): Promise<number> {
  const [row] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from runledger_test.effects_once`);
  return row!.n;
}

describe("a database outage", () => {
  // The loops must see the outage: statements fail promptly while the database is away (see
  // reconnectDelaySeconds in src/store/db.ts), rather than wait in the driver's queue.
  it(`a worker whose database disappears for ${OUTAGE_MS / 1000} s says so in a few lines, recovers by itself and loses nothing`, async () => {
    await createEffectTables(db);
    await defineJob(db, "effect.once", { maxAttempts: 25 });
    await enqueueJobs(
      db,
      Array.from({ length: BEFORE }, () => ({ jobType: "effect.once" })),
    );
    await relay.start();
    const worker = startWorkerProcess(relay.url(url), "outage", 4, {
      workMs: 20,
      leaseTtlSeconds: 6,
      pollIntervalMs: 100,
      reaperIntervalMs: 1_000,
      reaperRetryDelayMs: 500,
    });
    workers.push(worker);
    await worker.ready;
    await waitFor(async () => (await effects()) >= 50, { timeoutMs: 60_000, what: "work under way" });
    expect(await unfinished()).toBeGreaterThan(0);

    await relay.stop();
    // Work enqueued while the worker cannot reach the database is not lost either.
    await enqueueJobs(
      db,
      Array.from({ length: DURING }, () => ({ jobType: "effect.once" })),
    );
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    await relay.start();

    await waitFor(async () => (await unfinished()) === 0, { timeoutMs: 120_000, what: "every job succeeded" });
    expect(await effects()).toBe(BEFORE + DURING);

    worker.child.kill("SIGTERM");
    const exit = await worker.exit;
    expect(exit.code, exit.stderr).toBe(0);
    const lines = exit.stderr.split("\n").filter((line) => line.startsWith("runledger "));
    // Every line the worker wrote is one of its state-change lines; nothing else reached stderr.
    expect(exit.stderr.split("\n").filter((line) => line !== "" && !line.startsWith("runledger "))).toEqual([]);
    // One line when each loop starts failing (and when its error changes), one when it recovers.
    expect(lines.length, lines.join("\n")).toBeLessThanOrEqual(16);
    expect(
      lines.some((line) =>
        /^runledger warn: worker: database unreachable \(db\.connection_failed\), retrying in/.test(line),
      ),
    ).toBe(true);
    expect(lines.some((line) => /^runledger info: worker: reconnected after \d+ s/.test(line))).toBe(true);
    // No SQL and no parameters in anything logged.
    for (const line of lines) expect(line).not.toMatch(/select |insert |update |params|\$\d|runledger_test/i);
    const seen = parseWorkerExit(exit).seen;
    expect(seen["loop_state.worker.failing"]).toBeGreaterThanOrEqual(1);
    expect(seen["loop_state.worker.recovered"]).toBeGreaterThanOrEqual(1);
    console.log(`outage: ${lines.length} log lines\n${lines.join("\n")}\nevents: ${JSON.stringify(seen)}`);
  }, 240_000);
});
