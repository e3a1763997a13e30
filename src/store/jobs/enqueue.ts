import { isTimeoutSeconds, JOB_STAGES, type JobStage, newId, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { microsecondTimestamp } from "../rows.ts";
import {
  columns,
  extendedColumns,
  findExisting,
  insertJobs,
  insertJobsAtomic,
  insertJobsAtomicTraced,
  insertJobsExtended,
  insertJobsTraced,
  type PreparedItem,
  tracedColumns,
} from "../sql/jobs/enqueue.ts";
import { beginSend, type SendOperation } from "../telemetry.ts";
import {
  checkIdentifierLength,
  checkRequestSize,
  DEFINITION_HINT,
  fail,
  isBlank,
  isInt32,
  isStorableText,
  isUuid,
  isValidDate,
  jsonText,
} from "../validate.ts";
import { handOverJobKey, lockJobKey, takeJobKeyRequest } from "./job-key.ts";

/** A request to enqueue one job. Omitted settings come from the job type's definition. */
export interface JobEnqueue {
  jobType: string;
  organizationId?: string | null;
  payload?: unknown;
  priority?: number;
  maxAttempts?: number;
  timeoutSeconds?: number;
  /** Not claimable before this time. Default: now (database clock). */
  nextRunAt?: Date;
  /**
   * Deduplicates per (job type, organization or none): a retry with the identical request returns
   * the existing job; a different request fails with `job.idempotency_conflict`.
   */
  idempotencyKey?: string;
  /** Initial stage. Default `queued`. */
  stage?: JobStage;
  /**
   * Replace-by-key (distinct from `idempotencyKey`, and not combinable with it): at most one
   * not-yet-started job per (job type, organization or none, key). See `JobKeyOption`.
   */
  jobKey?: JobKeyOption;
  /**
   * Flow control: jobs sharing a concurrency key share the limits configured for it (per job type
   * with `maxConcurrencyPerKey`, or by key pattern with `setKeyLimit`). See README "Flow control".
   */
  concurrencyKey?: string;
}

/**
 * What an enqueue does when a job of the same type and organization holds `key` and has not
 * started yet (pending, never claimed in its run):
 * - `replace` (default): that job takes this request's payload and run-at (`nextRunAt`, or now),
 *   and its priority, attempts and timeout where given;
 * - `preserve`: that job is kept as it is;
 * - `debounce`: like `replace`, but run-at becomes now + `delayMs` (database clock), never later
 *   than `maxWaitMs` after that job was first enqueued.
 * A job that has started (running, or waiting for a retry) or finished hands the key to a new
 * job, as graphile-worker's `job_key` does; the result's `created` says which happened.
 */
export type JobKeyOption =
  | { key: string; mode?: "replace" | "preserve" }
  | { key: string; mode: "debounce"; delayMs: number; maxWaitMs?: number };

/** The job an enqueue resolved to; `created` is false when an idempotent retry found it. */
export interface EnqueuedJob {
  id: string;
  created: boolean;
}

const INVALID = "job.invalid_enqueue_request";

/** Validate and normalize one request; `texts` collects payload texts for a batch's size check. */
function prepareItem(input: JobEnqueue, ord: number, texts?: string[]): PreparedItem {
  if (input === null || typeof input !== "object") fail(INVALID, { index: ord }, "request is not an object");
  const { jobType, organizationId, priority, maxAttempts, timeoutSeconds, nextRunAt, idempotencyKey } = input;
  if (isBlank(jobType)) fail("identifier.job_type_blank", { index: ord });
  if (!isStorableText(jobType)) fail(INVALID, { index: ord, field: "jobType" });
  checkIdentifierLength(jobType, "jobType", { index: ord });
  if (organizationId != null && !isUuid(organizationId)) fail(INVALID, { index: ord, field: "organizationId" });
  if (priority !== undefined && !isInt32(priority)) fail(INVALID, { index: ord, field: "priority" });
  if (maxAttempts !== undefined && !(isInt32(maxAttempts) && maxAttempts > 0)) {
    fail(INVALID, { index: ord, field: "maxAttempts" });
  }
  if (timeoutSeconds !== undefined && !isTimeoutSeconds(timeoutSeconds)) {
    fail(INVALID, { index: ord, field: "timeoutSeconds" });
  }
  if (nextRunAt !== undefined && !isValidDate(nextRunAt)) fail(INVALID, { index: ord, field: "nextRunAt" });
  if (idempotencyKey !== undefined && (isBlank(idempotencyKey) || !isStorableText(idempotencyKey))) {
    fail(INVALID, { index: ord, field: "idempotencyKey" });
  }
  checkIdentifierLength(idempotencyKey, "idempotencyKey", { index: ord });
  const { concurrencyKey } = input;
  if (concurrencyKey !== undefined && (isBlank(concurrencyKey) || !isStorableText(concurrencyKey))) {
    fail(INVALID, { index: ord, field: "concurrencyKey" });
  }
  checkIdentifierLength(concurrencyKey, "concurrencyKey", { index: ord });
  const key = prepareJobKey(input, ord);
  const stage = input.stage ?? "queued";
  if (!(JOB_STAGES as readonly string[]).includes(stage)) fail(INVALID, { index: ord, field: "stage" });
  // Validates the payload (NUL, lone surrogates, non-JSON) and normalizes it (undefined → {}).
  const payload = jsonText(input.payload ?? {}, "job.invalid_payload", "payload");
  texts?.push(payload);
  const nextRunAtText = nextRunAt === undefined ? null : microsecondTimestamp(nextRunAt);
  const settings = {
    priority: priority ?? null,
    max_attempts: maxAttempts ?? null,
    timeout_seconds: timeoutSeconds ?? null,
    next_run_at: nextRunAtText,
    stage,
    // Left out of the canonical request when absent, so requests stored before it compare equal.
    concurrency_key: concurrencyKey,
  };
  return {
    ord,
    id: newId(),
    job_type: jobType,
    organization_id: organizationId ?? null,
    payload,
    ...settings,
    concurrency_key: concurrencyKey ?? null,
    idempotency_key: idempotencyKey ?? null,
    // The canonical request: what the caller asked for, not the resolved defaults, so an
    // identical retry compares equal (as jsonb) even after the definition's defaults change.
    enqueue_request: idempotencyKey === undefined ? null : `{"payload":${payload},${JSON.stringify(settings).slice(1)}`,
    ...key,
    schedule_id: null,
    scheduled_for: null,
    trace_context: null,
  };
}

function prepareJobKey(
  input: JobEnqueue,
  ord: number,
): Pick<PreparedItem, "job_key" | "key_mode" | "delay_ms" | "max_wait_ms"> {
  const option = input.jobKey;
  if (option === undefined) return { job_key: null, key_mode: null, delay_ms: null, max_wait_ms: null };
  const invalid = (field: string) => fail(INVALID, { index: ord, field: `jobKey.${field}` });
  if (option === null || typeof option !== "object") invalid("key");
  if (isBlank(option.key) || !isStorableText(option.key)) invalid("key");
  checkIdentifierLength(option.key, "jobKey.key", { index: ord });
  if (input.idempotencyKey !== undefined) fail(INVALID, { index: ord, field: "jobKey" }, "jobKey with idempotencyKey");
  const mode = option.mode ?? "replace";
  if (mode !== "replace" && mode !== "preserve" && mode !== "debounce") invalid("mode");
  if (mode !== "debounce") return { job_key: option.key, key_mode: mode, delay_ms: null, max_wait_ms: null };
  const { delayMs, maxWaitMs } = option as { delayMs: number; maxWaitMs?: number };
  if (!(isInt32(delayMs) && delayMs >= 0)) invalid("delayMs");
  if (maxWaitMs !== undefined && !(isInt32(maxWaitMs) && maxWaitMs >= 0)) invalid("maxWaitMs");
  // Debounce decides run-at itself, from the database clock.
  if (input.nextRunAt !== undefined) fail(INVALID, { index: ord, field: "nextRunAt" }, "nextRunAt with debounce");
  // A first enqueue waits no longer than the maximum either.
  const delay = maxWaitMs === undefined ? delayMs : Math.min(delayMs, maxWaitMs);
  return { job_key: option.key, key_mode: mode, delay_ms: delay, max_wait_ms: maxWaitMs ?? null };
}

async function resolveConflict(executor: Executor, item: PreparedItem): Promise<EnqueuedJob> {
  const [existing] = await findExisting.run(executor, {
    request: item.enqueue_request,
    jobType: item.job_type,
    key: item.idempotency_key,
    organizationId: item.organization_id,
  });
  if (existing === undefined) {
    throw new RunledgerError("job.idempotency_conflict_missing_existing", { details: { index: item.ord } });
  }
  if (existing.legacy)
    throw new RunledgerError("job.legacy_idempotency_snapshot_missing", { details: { index: item.ord } });
  if (!existing.same) throw new RunledgerError("job.idempotency_conflict", { details: { index: item.ord } });
  return { id: existing.id, created: false };
}

/**
 * Without idempotency keys the statement is all or nothing by itself; with them, a retry may win
 * over a since-disabled definition, so the caller runs it in a transaction (batches) instead.
 */
async function enqueuePrepared(executor: Executor, items: PreparedItem[]): Promise<EnqueuedJob[]> {
  const keyed = items.some((item) => item.idempotency_key !== null);
  const atomic = !keyed;
  const [result] =
    items[0]!.trace_context === null
      ? await (atomic ? insertJobsAtomic : insertJobs).run(executor, columns(items))
      : await (atomic ? insertJobsAtomicTraced : insertJobsTraced).run(executor, tracedColumns(items));
  const some = result?.inserted === null ? undefined : new Set(result?.inserted ?? []);
  if (keyed && result?.isolation_ok === false)
    throw new RunledgerError("job.enqueue_idempotency_unsupported_isolation");
  const missing = new Set(result?.missing ?? []);
  const refused = atomic ? items.find((item) => missing.has(item.job_type)) : undefined;
  if (refused !== undefined) throw definitionMissing(refused);
  const out: EnqueuedJob[] = [];
  for (const item of items) {
    if (some === undefined || some.has(item.id)) {
      out.push({ id: item.id, created: true });
      continue;
    }
    // Not inserted: an idempotent retry (which wins even over a since-disabled definition) or a
    // missing/disabled definition.
    if (item.idempotency_key !== null) {
      try {
        out.push(await resolveConflict(executor, item));
        continue;
      } catch (error) {
        if (!(error instanceof RunledgerError && error.code === "job.idempotency_conflict_missing_existing"))
          throw error;
        if (missing.size === 0) throw error;
      }
    }
    throw definitionMissing(item);
  }
  return out;
}

/** A job-key enqueue: see job-key.ts for the steps and why the insert path takes a lock. */
async function enqueueKeyed(executor: Executor, item: PreparedItem): Promise<EnqueuedJob> {
  const match = { jobType: item.job_type, organizationId: item.organization_id, key: item.job_key };
  const request = {
    mode: item.key_mode,
    payload: item.payload,
    priority: item.priority,
    maxAttempts: item.max_attempts,
    timeoutSeconds: item.timeout_seconds,
    concurrencyKey: item.concurrency_key,
    nextRunAt: item.next_run_at,
    delayMs: item.delay_ms,
    maxWaitMs: item.max_wait_ms,
  };
  const taken = await takeJobKeyRequest(executor, match, request);
  if (taken !== undefined) return { id: taken, created: false };
  return executor.transaction(async (tx) => {
    await lockJobKey(tx, match);
    const takenNow = await takeJobKeyRequest(tx, match, request);
    if (takenNow !== undefined) return { id: takenNow, created: false };
    await handOverJobKey(tx, match);
    const [result] = await insertJobsExtended.run(tx, extendedColumns([item]));
    if (result?.isolation_ok === false) throw new RunledgerError("job.enqueue_idempotency_unsupported_isolation");
    if (result?.inserted === null) return { id: item.id, created: true };
    if ((result?.missing.length ?? 0) > 0) throw definitionMissing(item);
    // Only a writer that bypasses the lock can hold the key now.
    throw new RunledgerError("job.job_key_contention", { details: { index: item.ord } });
  });
}

/** A job one scheduler pass or backfill fires: a slot of a schedule. */
export interface ScheduledJobInsert {
  jobType: string;
  organizationId: string | null;
  /** The schedule's template as validated JSON text. */
  payload: string;
  scheduleId: string;
  scheduledFor: Date;
  /** When it may run; the database's now when null. */
  nextRunAt: Date | null;
}

/**
 * Insert schedule fires in one statement (stage `scheduled`). A slot that already has a job
 * (`uq_job_queue_schedule_slot`) is skipped, and so are jobs whose type has no enabled
 * definition. Returns the ids inserted, by input position (null where skipped), and the job
 * types that were missing. For the scheduler and backfill; not part of the public API.
 */
export async function insertScheduledJobs(
  executor: Executor,
  inserts: readonly ScheduledJobInsert[],
): Promise<{ ids: (string | null)[]; missingJobTypes: Set<string> }> {
  if (inserts.length === 0) return { ids: [], missingJobTypes: new Set() };
  const items: PreparedItem[] = inserts.map((insert, ord) => ({
    ord,
    id: newId(),
    job_type: insert.jobType,
    organization_id: insert.organizationId,
    payload: insert.payload,
    priority: null,
    max_attempts: null,
    timeout_seconds: null,
    next_run_at: insert.nextRunAt === null ? null : microsecondTimestamp(insert.nextRunAt),
    stage: "scheduled",
    idempotency_key: null,
    enqueue_request: null,
    job_key: null,
    key_mode: null,
    delay_ms: null,
    max_wait_ms: null,
    schedule_id: insert.scheduleId,
    scheduled_for: microsecondTimestamp(insert.scheduledFor),
    trace_context: null,
    concurrency_key: null,
  }));
  const [result] = await insertJobsExtended.run(executor, extendedColumns(items));
  const some = result?.inserted === null ? undefined : new Set(result?.inserted ?? []);
  return {
    ids: items.map((item) => (some === undefined || some.has(item.id) ? item.id : null)),
    missingJobTypes: new Set(result?.missing ?? []),
  };
}

function definitionMissing(item: PreparedItem): RunledgerError {
  return new RunledgerError("job.definition_not_found_or_disabled", {
    details: { index: item.ord, jobType: item.job_type, hint: DEFINITION_HINT },
  });
}

/**
 * Enqueue one job: one insert statement with no transaction of its own, plus a lookup when an
 * idempotency key finds an earlier job; a job key takes one statement when an unstarted holder
 * takes the request, else four more in a transaction (see job-key.ts). Pass a transaction to enqueue atomically with your own writes.
 * Returns the job id, or the existing job's id for an identical idempotent retry.
 */
export async function enqueueJob(executor: Executor, input: JobEnqueue): Promise<EnqueuedJob> {
  const item = prepareItem(input, 0);
  const send = beginSend({ destination: item.job_type, count: 1 });
  if (send !== undefined) item.trace_context = send.traceContext;
  const job = await reporting(send, () =>
    item.job_key !== null ? enqueueKeyed(executor, item) : enqueuePrepared(executor, [item]).then((jobs) => jobs[0]!),
  );
  send?.end(job.id);
  return job;
}

/** Run `work` with its errors translated, recording a failure in the enqueue's telemetry. */
async function reporting<T>(send: SendOperation | undefined, work: () => Promise<T>): Promise<T> {
  try {
    return await translating(work);
  } catch (error) {
    send?.fail((error as RunledgerError).code);
    throw error;
  }
}

/**
 * Enqueue many jobs, all or nothing: any invalid request, unknown or disabled job type, or
 * conflicting idempotent retry fails the whole batch and writes nothing. Jobs without job keys go
 * in one insert statement (in a transaction when idempotency keys may need lookups); each job-key
 * item then takes its own statements, all in one transaction. Results are in input order.
 */
export async function enqueueJobs(executor: Executor, inputs: readonly JobEnqueue[]): Promise<EnqueuedJob[]> {
  if (!Array.isArray(inputs)) fail(INVALID, {}, "inputs is not an array");
  if (inputs.length === 0) return [];
  const texts: string[] = [];
  const items = inputs.map((input, ord) => prepareItem(input, ord, texts));
  checkRequestSize(texts);
  // One send for the batch: its context is every job's creation context.
  const jobType = items[0]!.job_type;
  const send = beginSend({
    destination: items.every((item) => item.job_type === jobType) ? jobType : undefined,
    count: items.length,
  });
  if (send?.traceContext != null) for (const item of items) item.trace_context = send.traceContext;
  const jobs = await reporting(send, () => {
    if (items.some((item) => item.job_key !== null)) return executor.transaction((tx) => enqueueMixed(tx, items));
    if (items.length === 1 || items.every((item) => item.idempotency_key === null)) {
      return enqueuePrepared(executor, items);
    }
    return executor.transaction((tx) => enqueuePrepared(tx, items));
  });
  send?.end(items.length === 1 ? jobs[0]!.id : undefined);
  return jobs;
}

/** A batch with job keys: the others in one statement, then each keyed one in input order. */
async function enqueueMixed(tx: Executor, items: PreparedItem[]): Promise<EnqueuedJob[]> {
  const out = new Array<EnqueuedJob>(items.length);
  const plain = items.filter((item) => item.job_key === null);
  if (plain.length > 0) for (const [i, job] of (await enqueuePrepared(tx, plain)).entries()) out[plain[i]!.ord] = job;
  for (const item of items) if (item.job_key !== null) out[item.ord] = await enqueueKeyed(tx, item);
  return out;
}
