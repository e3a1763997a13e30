// A handle closed while its driver waits to reconnect must not connect afterwards. postgres.js
// 3.4.9 opens a connection from a reconnect timer that ending the client does not cancel: the
// connection stays open, nobody owns it, and the process it belongs to never exits (a worker told
// to stop soon after an outage kept running until it was killed). Each handle reaches PostgreSQL
// through a relay of its own, which counts the connections it accepts.
import { sql } from "drizzle-orm";
import { afterAll, expect, it } from "vitest";
import { createDb } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { Relay } from "../support/relay.ts";

const { url } = await useTestDatabase();
const relays: Relay[] = [];
afterAll(async () => {
  for (const relay of relays) await relay.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Longer than the driver's longest reconnect delay (1 s, see `reconnectDelaySeconds`). */
const LONGEST_RECONNECT_DELAY_MS = 1_000;

async function relayedDb() {
  const relay = Relay.to(url);
  relays.push(relay);
  await relay.start();
  const db = createDb(relay.url(url), { max: 1, applicationName: "runledger-close-after-outage" });
  await db.execute(sql`select 1`);
  return { relay, db };
}

/** Cut the relay and let statements fail until the driver's reconnect delay has grown to its longest. */
async function outage(relay: Relay, statement: () => Promise<unknown>): Promise<void> {
  await relay.stop();
  for (let failed = 0; failed < 8; failed++) {
    await expect(statement()).rejects.toThrow();
  }
}

it("a statement waiting for its reconnect when the handle closes fails, and nothing connects afterwards", async () => {
  const { relay, db } = await relayedDb();
  await outage(relay, () => db.execute(sql`select 1`));
  await relay.start();
  const before = relay.accepted;

  const waiting = db.execute(sql`select 1`).then(
    () => "ran",
    () => "failed",
  );
  await db.$runledger.close({ timeoutSeconds: 0 });
  expect(await waiting).toBe("failed");
  await sleep(LONGEST_RECONNECT_DELAY_MS + 500);
  expect(relay.accepted - before).toBe(0);
});

it("a LISTEN connection reconnecting when the handle closes does not connect afterwards", async () => {
  const { relay, db } = await relayedDb();
  await db.$runledger.listen("runledger_close_after_outage", () => {});
  // The driver listens again after every failed attempt, with the reconnect delay between them.
  await outage(relay, () => db.execute(sql`select 1`));
  await relay.start();
  const before = relay.accepted;

  await db.$runledger.close({ timeoutSeconds: 0 });
  await sleep(LONGEST_RECONNECT_DELAY_MS + 500);
  expect(relay.accepted - before).toBe(0);
});
