import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { createDb, queryRows, toQueryError } from "../../src/store/index.ts";
import { type CloseCounter, guardTransactions } from "../../src/store/transaction-guard.ts";
import { useTestDatabase } from "../support/db.ts";
import { clientOnOwnSockets } from "../support/owned-sockets.ts";
import { waitFor } from "../support/wait.ts";

// Without the guard, postgres.js writes ROLLBACK on the dead connection from a setImmediate and
// the TypeError it throws escapes to the process: vitest reports it as an unhandled error.
const { db, url } = await useTestDatabase();
const victim = createDb(url, { max: 2 });
afterAll(() => victim.$runledger.close());

/** Terminate the backend that runs `pid` once a transaction has reported it. */
async function terminateWhenKnown(pid: () => number | undefined): Promise<void> {
  const target = await waitFor(() => pid(), { what: "the transaction's backend pid" });
  await waitFor(async () => {
    const [row] = await queryRows<{ waiting: boolean }>(
      db,
      sql`select state = 'active' and query like '%pg_sleep%' as waiting from pg_stat_activity where pid = ${target}`,
    );
    return row?.waiting === true;
  });
  await db.execute(sql`select pg_terminate_backend(${target})`);
}

type Tx = Parameters<Parameters<typeof victim.transaction>[0]>[0];

/** Run `body` in a transaction of `victim`, kill its backend mid-way, and return how it ended. */
async function killMidTransaction(body: (tx: Tx) => Promise<void>): Promise<unknown> {
  let pid: number | undefined;
  const transaction = victim.transaction(async (tx) => {
    pid = (await queryRows<{ pid: number }>(tx, sql`select pg_backend_pid() as pid`))[0]!.pid;
    await body(tx);
  });
  // Handle the outcome now: the transaction may fail before the termination call returns.
  const outcome = transaction.then(
    () => undefined,
    (e: unknown) => e,
  );
  await terminateWhenKnown(() => pid);
  return outcome;
}

describe("a transaction whose connection is lost", () => {
  it("rejects with db.connection_failed, and the process and the pool carry on", async () => {
    const error = await killMidTransaction(async (tx) => {
      await tx.execute(sql`select pg_sleep(5)`);
    });
    expect(toQueryError(error).code).toBe("db.connection_failed");
    // A stray write on the dead connection would throw from the next turns of the event loop.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await queryRows(victim, sql`select 1 as ok`)).toEqual([{ ok: 1 }]);
  });

  it("also inside a savepoint whose failure the caller catches and goes on (as the reaper does)", async () => {
    let afterLoss: unknown;
    const error = await killMidTransaction(async (tx) => {
      await tx
        .transaction(async (savepoint) => {
          await savepoint.execute(sql`select pg_sleep(5)`);
        })
        .catch(() => {});
      // Never sent: the connection is known to be gone.
      afterLoss = await tx.execute(sql`select 1`).catch((e: unknown) => e);
    });
    expect(toQueryError(error).code).toBe("db.connection_failed");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(afterLoss).toBeUndefined(); // the callback stopped at the lost savepoint
    await waitFor(async () => (await queryRows(victim, sql`select 1 as ok`).catch(() => [])).length === 1, {
      what: "the pool to reconnect",
    });
  });

  it.each([
    ["issues its next statement", true],
    ["commits", false],
  ])(
    "rejects without writing when the connection dies between statements and the callback then %s",
    async (_, more) => {
      let pid: number | undefined;
      let release: () => void = () => {};
      const resumed = new Promise<void>((resolve) => {
        release = resolve;
      });
      const transaction = victim.transaction(async (tx) => {
        pid = (await queryRows<{ pid: number }>(tx, sql`select pg_backend_pid() as pid`))[0]!.pid;
        await resumed; // no statement in flight while the backend dies
        if (more) await tx.execute(sql`select 1`);
      });
      const outcome = transaction.then(
        () => undefined,
        (e: unknown) => e,
      );
      const target = await waitFor(() => pid, { what: "the transaction's backend pid" });
      await db.execute(sql`select pg_terminate_backend(${target})`);
      await waitFor(async () => (await outcome) !== undefined, { what: "the transaction to fail" });
      release();
      expect(toQueryError(await outcome).code).toBe("db.connection_failed");
      // A write on the dead connection would throw from the next turns of the event loop.
      await new Promise((resolve) => setTimeout(resolve, 200));
      await waitFor(async () => (await queryRows(victim, sql`select 1 as ok`).catch(() => [])).length === 1, {
        what: "the pool to reconnect",
      });
    },
  );

  it("leaves ordinary failures alone: a failed savepoint rolls back and the transaction commits", async () => {
    await db.execute(sql`create table guard_rows (n int primary key)`);
    await victim.transaction(async (tx) => {
      await tx.execute(sql`insert into guard_rows values (1)`);
      await tx.transaction((sp) => sp.execute(sql`insert into guard_rows values (1)`)).catch(() => {});
      await tx.execute(sql`insert into guard_rows values (2)`);
    });
    await expect(
      victim.transaction(async (tx) => {
        await tx.execute(sql`insert into guard_rows values (3)`);
        throw new Error("application failure");
      }),
    ).rejects.toThrow("application failure");
    expect(await queryRows(db, sql`select n from guard_rows order by n`)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  // The driver tells `begin` of the close a few promise hops later; a callback resuming in between
  // (here: at once, from the close itself) would send its statement onto the socketless
  // connection, and the deferred write would throw from a setImmediate. The socket is the test's
  // own, so the close comes exactly there.
  it("sends nothing when the callback moves on in the same turn as the close", async () => {
    const closes: CloseCounter = { count: 0 };
    let onClose: () => void = () => {};
    const { sql: client, sockets } = clientOnOwnSockets(url, {
      max: 1,
      onclose: () => {
        closes.count++;
        onClose();
      },
    });
    const guarded = guardTransactions(client, closes);
    try {
      let sentAfter: unknown = "not reached";
      const closed = new Promise<void>((resolve) => {
        onClose = resolve;
      });
      const outcome = guarded
        .begin(async (tx) => {
          await tx.unsafe("select 1");
          sockets.at(-1)!.destroy();
          await closed;
          sentAfter = await tx.unsafe("select 2").catch((e: unknown) => e);
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(toQueryError(await outcome).code).toBe("db.connection_failed");
      // A write on the socketless connection would throw from the next turns of the event loop.
      await new Promise((resolve) => setTimeout(resolve, 200));
      // Refused after one turn, when the loss was known: never written.
      expect(toQueryError(sentAfter).code).toBe("db.connection_failed");
      expect(closes.count).toBe(1);
    } finally {
      await client.end({ timeout: 1 });
    }
  });
});
