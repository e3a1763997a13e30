import { eq, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import type { QueryError } from "../../src/core/index.ts";
import { enqueueJob, enqueueJobs, schema, toQueryError } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { countRows, defineJob, ledgerCounts } from "../support/factories.ts";

const { db } = await useTestDatabase();
const ORG_A = "0190f0a0-0000-7000-8000-00000000000a";
const ORG_B = "0190f0a0-0000-7000-8000-00000000000b";

beforeAll(async () => {
  await defineJob(db, "mail.send", { maxAttempts: 5, defaultTimeoutSeconds: 60, defaultPriority: 7 });
  await defineJob(db, "mail.off", { isEnabled: false });
});

async function job(id: string) {
  const [row] = await db.select().from(schema.jobQueue).where(eq(schema.jobQueue.id, id));
  return row!;
}

describe("enqueueJob", () => {
  it("inserts a PENDING job with definition defaults and an ENQUEUED event", async () => {
    const { id, created } = await enqueueJob(db, { jobType: "mail.send", payload: { to: "a@example.com" } });
    expect(created).toBe(true);
    const row = await job(id);
    expect(row).toMatchObject({
      status: "PENDING",
      priority: 7,
      maxAttempts: 5,
      timeoutSeconds: 60,
      attempt: 0,
      runNumber: 1,
      stage: "queued",
      payload: { to: "a@example.com" },
      idempotencyKey: null,
      enqueueRequest: null,
    });
    const events = await db.select().from(schema.jobEvents).where(eq(schema.jobEvents.jobId, id));
    expect(events).toMatchObject([{ eventType: "ENQUEUED", stage: "queued", payload: { job_type: "mail.send" } }]);
  });

  it("takes explicit settings over the definition's", async () => {
    const nextRunAt = new Date(Date.now() + 60_000);
    const { id } = await enqueueJob(db, {
      jobType: "mail.send",
      priority: -3,
      maxAttempts: 1,
      timeoutSeconds: 5,
      nextRunAt,
      stage: "scheduled",
      organizationId: ORG_A,
    });
    expect(await job(id)).toMatchObject({
      priority: -3,
      maxAttempts: 1,
      timeoutSeconds: 5,
      nextRunAt,
      stage: "scheduled",
      organizationId: ORG_A,
    });
  });

  it("returns the existing job for an identical keyed retry and refuses a different one", async () => {
    const request = {
      jobType: "mail.send",
      payload: { n: 1 },
      idempotencyKey: "k1",
      nextRunAt: new Date("2030-01-01T00:00:00.123Z"),
    };
    const first = await enqueueJob(db, request);
    const again = await enqueueJob(db, { ...request, payload: { n: 1 } });
    expect(again).toEqual({ id: first.id, created: false });
    expect(await countRows(db, "job_events", sql`job_id = ${first.id}`)).toBe(1);

    await expect(enqueueJob(db, { ...request, payload: { n: 2 } })).rejects.toMatchObject({
      code: "job.idempotency_conflict",
    });
    // Passing the default explicitly is a different request.
    await expect(enqueueJob(db, { ...request, priority: 7 })).rejects.toMatchObject({
      code: "job.idempotency_conflict",
    });
    expect((await job(first.id)).enqueueRequest).toEqual({
      payload: { n: 1 },
      priority: null,
      max_attempts: null,
      timeout_seconds: null,
      next_run_at: "2030-01-01T00:00:00.123000Z",
      stage: "queued",
    });
  });

  it("scopes idempotency keys per organization, with no organization a scope of its own", async () => {
    const a = await enqueueJob(db, { jobType: "mail.send", idempotencyKey: "scoped", organizationId: ORG_A });
    const b = await enqueueJob(db, { jobType: "mail.send", idempotencyKey: "scoped", organizationId: ORG_B });
    const none = await enqueueJob(db, { jobType: "mail.send", idempotencyKey: "scoped" });
    expect(new Set([a.id, b.id, none.id]).size).toBe(3);
    expect([a.created, b.created, none.created]).toEqual([true, true, true]);
  });

  it("refuses unknown and disabled job types and writes nothing", async () => {
    const before = await ledgerCounts(db);
    await expect(enqueueJob(db, { jobType: "nope" })).rejects.toMatchObject({
      code: "job.definition_not_found_or_disabled",
    });
    await expect(enqueueJob(db, { jobType: "mail.off" })).rejects.toMatchObject({
      code: "job.definition_not_found_or_disabled",
    });
    expect(await ledgerCounts(db)).toEqual(before);
  });

  it("returns an existing keyed job even after its type was disabled", async () => {
    await defineJob(db, "mail.later");
    const first = await enqueueJob(db, { jobType: "mail.later", idempotencyKey: "kept" });
    await defineJob(db, "mail.later", { isEnabled: false });
    expect(await enqueueJob(db, { jobType: "mail.later", idempotencyKey: "kept" })).toEqual({
      id: first.id,
      created: false,
    });
  });

  it.each([
    [{ jobType: " " }, "identifier.job_type_blank"],
    [{ jobType: "mail.send", priority: 1.5 }, "job.invalid_enqueue_request"],
    [{ jobType: "mail.send", priority: 2 ** 31 }, "job.invalid_enqueue_request"],
    [{ jobType: "mail.send", maxAttempts: 0 }, "job.invalid_enqueue_request"],
    [{ jobType: "mail.send", timeoutSeconds: -1 }, "job.invalid_enqueue_request"],
    [{ jobType: "mail.send", idempotencyKey: "  " }, "job.invalid_enqueue_request"],
    [{ jobType: "mail.send", organizationId: "not-a-uuid" }, "job.invalid_enqueue_request"],
    [{ jobType: "mail.send", nextRunAt: new Date("nope") }, "job.invalid_enqueue_request"],
    [{ jobType: "mail.send", stage: "running-ish" }, "job.invalid_enqueue_request"],
    [{ jobType: "mail.send", payload: { s: "a\u0000b" } }, "job.invalid_payload"],
    [{ jobType: "mail.send", payload: { s: "\ud800" } }, "job.invalid_payload"],
    [{ jobType: "mail.send", payload: { n: 10n } }, "job.invalid_payload"],
  ])("rejects bad request #%# with %s before writing", async (input, code) => {
    const before = await ledgerCounts(db);
    const error = await enqueueJob(db, input as never).catch((e: unknown) => e);
    expect(error).toMatchObject({ code });
    expect((error as Error).message).not.toMatch(/insert|select|\$1/i);
    expect(await ledgerCounts(db)).toEqual(before);
  });

  it("joins the caller's transaction: a rollback leaves no job", async () => {
    const before = await ledgerCounts(db);
    await expect(
      db.transaction(async (tx) => {
        await enqueueJob(tx, { jobType: "mail.send" });
        throw new Error("application failed");
      }),
    ).rejects.toThrow("application failed");
    expect(await ledgerCounts(db)).toEqual(before);
  });

  it("refuses keyed enqueue outside READ COMMITTED", async () => {
    await expect(
      db.transaction(async (tx) => enqueueJob(tx, { jobType: "mail.send", idempotencyKey: "rr" }), {
        isolationLevel: "repeatable read",
      }),
    ).rejects.toMatchObject({ code: "job.enqueue_idempotency_unsupported_isolation" });
    expect(await countRows(db, "job_queue", sql`idempotency_key = 'rr'`)).toBe(0);
  });
});

describe("enqueueJobs", () => {
  it("stores text that needs quoting in array literals exactly", async () => {
    const key = 'k "quoted" \\ back,{brace}\nline';
    const payload = { s: 'line1\nline2 \u2028 "q" \\ {}', n: null, e: "" };
    const batch = [
      { jobType: "mail.send", payload, idempotencyKey: key },
      { jobType: "mail.send", payload: "NULL" },
    ];
    const [keyed, plain] = await enqueueJobs(db, batch);
    expect((await job(keyed!.id)).payload).toEqual(payload);
    expect((await job(keyed!.id)).idempotencyKey).toBe(key);
    expect((await job(plain!.id)).payload).toBe("NULL");
    // The stored snapshot compares equal: an identical retry finds the job.
    expect(await enqueueJobs(db, batch.slice(0, 1))).toEqual([{ id: keyed!.id, created: false }]);
  });

  it("inserts a batch in order with one event each", async () => {
    const results = await enqueueJobs(
      db,
      Array.from({ length: 500 }, (_, i) => ({ jobType: "mail.send", payload: { i } })),
    );
    expect(results).toHaveLength(500);
    const rows = await db
      .select()
      .from(schema.jobQueue)
      .where(sql`${schema.jobQueue.id} in ${results.map((r) => r.id)}`);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const [i, r] of results.entries()) expect(byId.get(r.id)?.payload).toEqual({ i });
    expect(
      await countRows(db, "job_events", sql`job_id in ${sql.raw(`(${results.map((r) => `'${r.id}'`).join(",")})`)}`),
    ).toBe(500);
  });

  it("is all or nothing", async () => {
    const before = await ledgerCounts(db);
    await expect(enqueueJobs(db, [{ jobType: "mail.send" }, { jobType: "nope" }])).rejects.toMatchObject({
      code: "job.definition_not_found_or_disabled",
      details: { index: 1 },
    });
    await enqueueJob(db, { jobType: "mail.send", idempotencyKey: "batch", payload: 1 });
    const withConflict = await ledgerCounts(db);
    await expect(
      enqueueJobs(db, [{ jobType: "mail.send" }, { jobType: "mail.send", idempotencyKey: "batch", payload: 2 }]),
    ).rejects.toMatchObject({ code: "job.idempotency_conflict" });
    expect(await ledgerCounts(db)).toEqual(withConflict);
    expect(withConflict.job_queue).toBe(before.job_queue! + 1);
  });

  it("dedupes repeated keys within one batch", async () => {
    const [a, b] = await enqueueJobs(db, [
      { jobType: "mail.send", idempotencyKey: "twice", payload: { x: 1 } },
      { jobType: "mail.send", idempotencyKey: "twice", payload: { x: 1 } },
    ]);
    expect(a).toEqual({ id: b!.id, created: true });
    expect(b!.created).toBe(false);
  });
});

describe("job types in use", () => {
  // job_queue has no foreign key to job_definitions (it cost a fifth of batch enqueue's server
  // time); a trigger on the definitions side keeps the guarantee.
  const remove = (jobType: string) =>
    db.execute(sql`delete from runledger.job_definitions where job_type = ${jobType}`);
  const rename = (jobType: string) =>
    db.execute(
      sql`update runledger.job_definitions set job_type = ${`${jobType}.renamed`} where job_type = ${jobType}`,
    );
  // Through the library's own translation, whichever way the installed drizzle-orm wraps driver errors.
  const sqlstate = (error: unknown) => (toQueryError(error) as QueryError).sqlstate;

  it("cannot be deleted or renamed while a job uses them", async () => {
    await defineJob(db, "type.used");
    const { id } = await enqueueJob(db, { jobType: "type.used" });
    expect(sqlstate(await remove("type.used").catch((e: unknown) => e))).toBe("23503");
    expect(sqlstate(await rename("type.used").catch((e: unknown) => e))).toBe("23503");
    expect((await job(id)).jobType).toBe("type.used");
    expect(await countRows(db, "job_definitions", sql`job_type = 'type.used'`)).toBe(1);
  });

  it("can be deleted or renamed when unused, and enqueue then refuses the old name", async () => {
    await defineJob(db, "type.unused");
    await defineJob(db, "type.gone");
    await rename("type.unused");
    await remove("type.gone");
    for (const jobType of ["type.unused", "type.gone"]) {
      await expect(enqueueJob(db, { jobType })).rejects.toMatchObject({ code: "job.definition_not_found_or_disabled" });
    }
  });

  it("a delete racing an enqueue waits for it, then sees its job", async () => {
    await defineJob(db, "type.racing");
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let enqueued!: () => void;
    const inside = new Promise<void>((resolve) => (enqueued = resolve));
    const enqueue = db.transaction(async (tx) => {
      await enqueueJob(tx, { jobType: "type.racing" });
      enqueued();
      await held;
    });
    await inside;
    const deletion = remove("type.racing").then(
      () => "deleted",
      (e: unknown) => sqlstate(e),
    );
    // The enqueue's share lock holds the delete back until it commits.
    const early = await Promise.race([deletion, new Promise((resolve) => setTimeout(() => resolve("waiting"), 200))]);
    expect(early).toBe("waiting");
    release();
    await enqueue;
    expect(await deletion).toBe("23503");
  });
});
