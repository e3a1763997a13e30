import { afterAll, expect, it } from "vitest";
import { createDb, type RunledgerDb } from "../../src/store/index.ts";
import { claimRunnableJobs } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { Relay } from "../support/relay.ts";
import { waitFor } from "../support/wait.ts";

// The handle reaches PostgreSQL through a relay of this test's own, so the database can disappear
// and come back without touching the server.
const { url } = await useTestDatabase();
const relay = Relay.to(url);
await relay.start();
const db: RunledgerDb = createDb(relay.url(url), { max: 2 });
afterAll(async () => {
  await relay.stop();
  await db.$runledger.close({ timeoutSeconds: 1 });
});

const claim = () =>
  claimRunnableJobs(db, { workerId: "unreachable", leaseSeconds: 30, limit: 1, jobTypes: ["nothing.here"] });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it("while the database is unreachable a statement fails within seconds, however long the outage has lasted, and works again soon after it returns", async () => {
  let listens = 0;
  await db.$runledger.listen(
    "runledger_unreachable_test",
    () => {},
    () => listens++,
  );
  await claim();
  expect(listens).toBe(1);

  await relay.stop();
  // What the runtime's loops do meanwhile: one statement at a time, again as soon as it fails.
  const busyUntil = Date.now() + 8_000;
  const busy = (async () => {
    while (Date.now() < busyUntil) {
      await claim().catch(() => {});
      await sleep(100);
    }
  })();
  await sleep(8_000);

  // Eight seconds in, a claim still fails promptly with the connection code, instead of waiting
  // in the driver's queue behind its growing reconnect delay (which reaches 20 s).
  const startedAt = performance.now();
  const failure = await claim().then(
    () => undefined,
    (error: unknown) => error as { code?: string },
  );
  const failedAfterMs = performance.now() - startedAt;
  expect(failure?.code).toBe("db.connection_failed");
  expect(failedAfterMs).toBeLessThan(3_000);
  await busy;

  // Back: the next claim and the listener reconnect within a few seconds, not after a 20 s delay.
  await relay.start();
  const backAt = performance.now();
  await waitFor(
    () =>
      claim().then(
        () => true,
        () => false,
      ),
    { timeoutMs: 30_000, everyMs: 50, what: "a claim" },
  );
  const claimedAfterMs = performance.now() - backAt;
  await waitFor(() => listens === 2, { timeoutMs: 30_000, what: "the listener back" });
  const listeningAfterMs = performance.now() - backAt;
  expect(claimedAfterMs).toBeLessThan(3_000);
  expect(listeningAfterMs).toBeLessThan(3_000);
}, 90_000);
