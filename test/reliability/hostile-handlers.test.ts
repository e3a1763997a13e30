import { sql } from "drizzle-orm";
import * as v from "valibot";
import { afterEach, describe, expect, it } from "vitest";
import { JobFailure, MAX_ERROR_MESSAGE_BYTES } from "../../src/core/index.ts";
import { JobCatalog, JobsConfig, Supervisor } from "../../src/runtime/index.ts";
import { enqueueJob, queryRows } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { waitFor } from "../support/wait.ts";

/*
 * Hostile work that gets past enqueue: a payload that the catalog's schema refuses at run time,
 * and handlers that throw or return things no handler should. None of it may crash the worker:
 * each job ends dead-lettered with a stable code, and the supervisor goes on to the next job.
 */

const { db } = await useTestDatabase();
const running: Supervisor[] = [];

afterEach(async () => {
  const leaked = running.splice(0).filter((s) => !s.isShutdownRequested);
  for (const supervisor of leaked) await supervisor.shutdown(1000);
  expect(leaked).toEqual([]);
});

const HUGE = "x".repeat(10 * 1024 * 1024);
const circular: Record<string, unknown> = { name: "circular" };
circular.self = circular;

/** What each hostile handler does; every one runs as its own job with one attempt. */
const BEHAVIOURS: Record<string, () => unknown> = {
  "throws a string": () => {
    throw "boom";
  },
  "throws undefined": () => {
    throw undefined;
  },
  "throws null": () => {
    throw null;
  },
  "throws a symbol": () => {
    throw Symbol("boom");
  },
  "throws a null-prototype object": () => {
    throw Object.create(null);
  },
  "throws a circular object": () => {
    throw circular;
  },
  "throws an Error with a 10 MB message": () => {
    throw new Error(HUGE);
  },
  "throws an Error whose message getter throws": () => {
    const error = new Error("x");
    Object.defineProperty(error, "message", {
      get() {
        throw new Error("getter");
      },
    });
    throw error;
  },
  "throws a proxy that refuses every trap": () => {
    throw new Proxy(
      {},
      {
        getPrototypeOf() {
          throw new Error("trap");
        },
        get() {
          throw new Error("trap");
        },
      },
    );
  },
  "fails with a 10 MB message": () => {
    throw JobFailure.terminal("hostile.huge", HUGE);
  },
  "fails with NUL in code and message": () => {
    throw JobFailure.terminal("hostile\u0000code", "a\u0000b\ud800");
  },
  "fails with a blank code": () => {
    throw JobFailure.terminal("  ", "m");
  },
  "fails with a 100 KB code": () => {
    throw JobFailure.terminal("c".repeat(100 * 1024), "m");
  },
  "returns a circular checkpoint": () => ({ stage: "completed", checkpoint: circular }),
  "returns a checkpoint nested 10,000 deep": () => {
    let value: unknown = 1;
    for (let i = 0; i < 10_000; i++) value = [value];
    return { stage: "completed", checkpoint: value };
  },
  "returns negative progress": () => ({ stage: "completed", progressDone: -1 }),
};

/** The code each job ends with (and must keep ending with). */
const EXPECTED: Record<string, string> = {
  "throws a string": "job.handler_panic",
  "throws undefined": "job.handler_panic",
  "throws null": "job.handler_panic",
  "throws a symbol": "job.handler_panic",
  "throws a null-prototype object": "job.handler_panic",
  "throws a circular object": "job.handler_panic",
  "throws an Error with a 10 MB message": "job.handler_panic",
  "throws an Error whose message getter throws": "job.handler_panic",
  "throws a proxy that refuses every trap": "job.handler_panic",
  "fails with a 10 MB message": "hostile.huge",
  "fails with NUL in code and message": "job.invalid_failure",
  "fails with a blank code": "job.invalid_failure",
  "fails with a 100 KB code": "job.invalid_failure",
  "returns a circular checkpoint": "job.invalid_completion",
  "returns a checkpoint nested 10,000 deep": "job.invalid_completion",
  "returns negative progress": "job.invalid_completion",
};

function config(): JobsConfig {
  return JobsConfig.from({ pollIntervalMs: 50, leaseTtlSeconds: 60, reaperIntervalMs: 1_000 });
}

describe("hostile work reaching a worker", () => {
  it(`dead-letters each of ${Object.keys(BEHAVIOURS).length + 1} hostile jobs with a stable code and keeps working`, async () => {
    const catalog = new JobCatalog({ maxAttempts: 1 })
      .job("hostile.typed", async () => {}, { payload: v.object({ n: v.number() }) })
      .job(
        "hostile.behave",
        async (payload) => {
          return (await BEHAVIOURS[payload.kind]!()) as undefined;
        },
        { payload: v.object({ kind: v.string() }) },
      )
      .job("hostile.after", async () => {});
    await catalog.syncDefinitions(db);

    // Stored as is: the store does not know the catalog's schema, only the worker checks it.
    const typed = await enqueueJob(db, { jobType: "hostile.typed", payload: { n: "not a number" } });
    const ids = new Map<string, string>([["payload failing the schema at run time", typed.id]]);
    for (const kind of Object.keys(BEHAVIOURS)) {
      ids.set(kind, (await enqueueJob(db, { jobType: "hostile.behave", payload: { kind } })).id);
    }

    const supervisor = Supervisor.builder(db, config()).withCatalog(catalog).build();
    const loopErrors: unknown[] = [];
    supervisor.on("loop:error", (e) => loopErrors.push(e.error));
    supervisor.start();
    running.push(supervisor);

    const settled = async () => {
      const rows = await queryRows<{ id: string; status: string; last_error_code: string | null; len: number | null }>(
        db,
        sql`select id, status, last_error_code, octet_length(last_error_message) as len
          from runledger.job_queue where id = any(${sql.param([...ids.values()])}::uuid[])`,
      );
      return rows.every((r) => r.status === "DEAD_LETTERED") ? rows : undefined;
    };
    const rows = await waitFor(settled, { timeoutMs: 20_000, what: "every hostile job to be dead-lettered" });
    const byId = new Map(rows.map((r) => [r.id, r]));

    const outcomes = Object.fromEntries([...ids].map(([kind, id]) => [kind, byId.get(id)!.last_error_code]));
    expect(outcomes).toEqual({ "payload failing the schema at run time": "job.invalid_payload", ...EXPECTED });
    // Error text is bounded, however much a handler produced.
    for (const row of rows) expect(row.len ?? 0).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);

    // Each dead letter has its snapshot row and nothing is left leased.
    const [dead] = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from runledger.job_dead_letters where job_id = any(${sql.param([...ids.values()])}::uuid[])`,
    );
    expect(dead!.n).toBe(ids.size);

    // The same supervisor still runs ordinary work.
    const after = await catalog.enqueue(db, "hostile.after", {});
    await waitFor(
      async () => {
        const [row] = await queryRows<{ status: string }>(
          db,
          sql`select status from runledger.job_queue where id = ${after.id}`,
        );
        return row!.status === "SUCCEEDED";
      },
      { what: "the next job to succeed" },
    );
    await supervisor.shutdown(5000);
    expect(loopErrors).toEqual([]);
  });
});
