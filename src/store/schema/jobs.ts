import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  numeric,
  text,
  unique,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { claimOrigin, jobEventType, jobFailureKind, jobStatus, runledger, timestamps, tstz } from "./base.ts";

/**
 * One row per job type: enqueue-time defaults, an on/off switch for new work, and its flow
 * control (pause, concurrency and rate limits; see src/store/flow/).
 */
export const jobDefinitions = runledger.table(
  "job_definitions",
  {
    jobType: text("job_type").primaryKey(),
    version: integer("version").notNull().default(1),
    maxAttempts: integer("max_attempts").notNull().default(8),
    defaultTimeoutSeconds: integer("default_timeout_seconds").notNull().default(900),
    defaultPriority: integer("default_priority").notNull().default(100),
    isEnabled: boolean("is_enabled").notNull().default(true),
    /** Paused: queued jobs of the type are not claimed until resumed. */
    pausedAt: tstz("paused_at"),
    /** Most jobs of the type running at once, across all workers. */
    maxConcurrency: integer("max_concurrency"),
    /** Most jobs of the type running at once per concurrency key. */
    maxConcurrencyPerKey: integer("max_concurrency_per_key"),
    /** Most starts of the type per `rate_interval_ms` (sliding window). */
    rateLimit: integer("rate_limit"),
    rateIntervalMs: integer("rate_interval_ms"),
    ...timestamps,
  },
  (t) => [
    check("ck_job_definitions_job_type_not_blank", sql`btrim(${t.jobType}) <> ''`),
    check("ck_job_definitions_version_positive", sql`${t.version} > 0`),
    check("ck_job_definitions_max_attempts_positive", sql`${t.maxAttempts} > 0`),
    check("ck_job_definitions_timeout_positive", sql`${t.defaultTimeoutSeconds} > 0`),
    check("ck_job_definitions_max_concurrency_positive", sql`${t.maxConcurrency} is null or ${t.maxConcurrency} > 0`),
    check(
      "ck_job_definitions_max_concurrency_per_key_positive",
      sql`${t.maxConcurrencyPerKey} is null or ${t.maxConcurrencyPerKey} > 0`,
    ),
    check(
      "ck_job_definitions_rate_limit",
      sql`(${t.rateLimit} is null) = (${t.rateIntervalMs} is null) and (${t.rateLimit} is null or (${t.rateLimit} > 0 and ${t.rateIntervalMs} > 0))`,
    ),
    // Flow control is configured when this index is not empty: the claim's guard probes it.
    index("idx_job_definitions_flow")
      .on(t.jobType)
      .where(
        sql`paused_at is not null or max_concurrency is not null or max_concurrency_per_key is not null or rate_limit is not null`,
      ),
  ],
);

/** One row per logical job; requeue turns the same row into a new run. */
export const jobQueue = runledger.table(
  "job_queue",
  {
    id: uuid("id").primaryKey(),
    // No foreign key: enqueue share-locks the enabled definitions it inserts against, and the
    // per-row check cost ~5 of 20 µs of server time per job in a 1,000-job batch enqueue. A
    // trigger on job_definitions (migration 0002) refuses deleting or renaming a type in use.
    jobType: text("job_type").notNull(),
    organizationId: uuid("organization_id"),
    payload: jsonb("payload").$type<unknown>().notNull().default({}),
    status: jobStatus("status").notNull().default("PENDING"),
    priority: integer("priority").notNull().default(100),
    runNumber: integer("run_number").notNull().default(1),
    attempt: integer("attempt").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull(),
    timeoutSeconds: integer("timeout_seconds").notNull().default(900),
    nextRunAt: tstz("next_run_at").notNull().defaultNow(),
    leaseExpiresAt: tstz("lease_expires_at"),
    lastHeartbeatAt: tstz("last_heartbeat_at"),
    workerId: text("worker_id"),
    startedAt: tstz("started_at"),
    finishedAt: tstz("finished_at"),
    stage: text("stage").notNull().default("queued"),
    progressDone: bigint("progress_done", { mode: "number" }),
    progressTotal: bigint("progress_total", { mode: "number" }),
    progressPct: numeric("progress_pct", { mode: "number" }).generatedAlwaysAs(
      sql`case when progress_done is not null and progress_total > 0 then round(progress_done * 100.0 / progress_total, 2) end`,
    ),
    checkpoint: jsonb("checkpoint").$type<unknown>(),
    idempotencyKey: text("idempotency_key"),
    enqueueRequest: jsonb("enqueue_request").$type<unknown>(),
    statusReason: text("status_reason"),
    lastErrorCode: text("last_error_code"),
    lastErrorMessage: text("last_error_message"),
    // The step this job backs; no foreign key (see workflowSteps.jobId).
    workflowStepId: uuid("workflow_step_id"),
    // The attempt the row holds: the running one while LEASED, the successful one once SUCCEEDED
    // (see "The ledger" below). Every other attempt is a row of job_attempt_log.
    leasedAt: tstz("leased_at"),
    leaseSeconds: integer("lease_seconds"),
    /** The stage right after the claim: the LEASED event's stage. */
    leaseStage: text("lease_stage"),
    claimOrigin: claimOrigin("claim_origin"),
    executionStartedAt: tstz("execution_started_at"),
    /** Id of the attempt's LEASED event, drawn from the event log's sequence at the claim. */
    leaseEventId: bigint("lease_event_id", { mode: "number" }),
    /** Id of the SUCCEEDED event, drawn at the success. */
    finishEventId: bigint("finish_event_id", { mode: "number" }),
    /**
     * Id of the ENQUEUED event, drawn at the insert; the event is derived from the row. Null on jobs
     * enqueued before it moved here, whose ENQUEUED event is a log row.
     */
    enqueueEventId: bigint("enqueue_event_id", { mode: "number" }),
    /** The stage the job was enqueued with: its ENQUEUED event's stage. */
    enqueueStage: text("enqueue_stage"),
    // Provenance of a scheduled job: the schedule (no foreign key) and the slot it fired for.
    scheduleId: uuid("schedule_id"),
    scheduledFor: tstz("scheduled_for"),
    // Replace-by-key: one job per (type, organization, key) holds it; see enqueue's job key.
    jobKey: text("job_key"),
    // W3C trace context (traceparent, then tracestate after a newline) of the enqueue that made
    // this job, when a tracer was registered; the worker links its processing span to it.
    traceContext: text("trace_context"),
    // Flow control: jobs sharing a key share its concurrency and rate limits (src/store/flow/).
    concurrencyKey: text("concurrency_key"),
    ...timestamps,
  },
  (t) => [
    check(
      "ck_job_queue_concurrency_key_not_blank",
      sql`${t.concurrencyKey} is null or btrim(${t.concurrencyKey}) <> ''`,
    ),
    check("ck_job_queue_run_number_positive", sql`${t.runNumber} > 0`),
    check("ck_job_queue_attempt_non_negative", sql`${t.attempt} >= 0`),
    check("ck_job_queue_max_attempts_positive", sql`${t.maxAttempts} > 0`),
    check("ck_job_queue_timeout_positive", sql`${t.timeoutSeconds} > 0`),
    check("ck_job_queue_stage_not_blank", sql`btrim(${t.stage}) <> ''`),
    check("ck_job_queue_worker_id_not_blank", sql`${t.workerId} is null or btrim(${t.workerId}) <> ''`),
    check(
      "ck_job_queue_idempotency_key_not_blank",
      sql`${t.idempotencyKey} is null or btrim(${t.idempotencyKey}) <> ''`,
    ),
    check(
      "ck_job_queue_idempotency_enqueue_request",
      sql`${t.idempotencyKey} is null or ${t.enqueueRequest} is not null`,
    ),
    check(
      "ck_job_queue_progress",
      sql`(${t.progressDone} is null or ${t.progressDone} >= 0) and (${t.progressTotal} is null or ${t.progressTotal} >= 0) and (${t.progressDone} is null or ${t.progressTotal} is null or ${t.progressDone} <= ${t.progressTotal})`,
    ),
    check(
      "ck_job_queue_lease_shape",
      sql`${t.status} <> 'LEASED' or (${t.workerId} is not null and ${t.leaseExpiresAt} is not null and ${t.attempt} > 0)`,
    ),
    check("ck_job_queue_finished_shape", sql`${t.status} in ('PENDING', 'LEASED') or ${t.finishedAt} is not null`),
    uniqueIndex("uq_job_queue_type_idempotency_org")
      .on(t.jobType, t.organizationId, t.idempotencyKey)
      .where(sql`idempotency_key is not null and organization_id is not null`),
    uniqueIndex("uq_job_queue_type_idempotency_global")
      .on(t.jobType, t.idempotencyKey)
      .where(sql`idempotency_key is not null and organization_id is null`),
    check("ck_job_queue_schedule_slot", sql`(${t.scheduleId} is null) = (${t.scheduledFor} is null)`),
    check("ck_job_queue_job_key_not_blank", sql`${t.jobKey} is null or btrim(${t.jobKey}) <> ''`),
    // Neither index names a column the claim or completion writes (key, expression or predicate),
    // so neither can keep those updates from being HOT.
    // One job per schedule slot: racing schedulers and repeated backfills cannot fire it twice.
    uniqueIndex("uq_job_queue_schedule_slot").on(t.scheduleId, t.scheduledFor).where(sql`schedule_id is not null`),
    // One holder per job key and (type, organization); enqueue hands the key from a job that has
    // started to the new one. One expression index (the nil UUID standing for "no organization")
    // lets one prepared statement find the holder with or without an organization.
    uniqueIndex("uq_job_queue_job_key")
      .on(t.jobType, sql`coalesce(organization_id, '00000000-0000-0000-0000-000000000000'::uuid)`, t.jobKey)
      .where(sql`job_key is not null`),
    // No index names a column the claim writes (status, attempt, worker, lease), so the claim's
    // update is HOT: no index entries, one heap write on the same page (the table's fillfactor
    // leaves the room, migration 0003). The claim index keeps leased jobs until they finish; the
    // claim skips them on the heap. Expired leases are found through it too: no lease index.
    index("idx_job_queue_claim").on(t.priority.desc(), t.nextRunAt, t.createdAt, t.id).where(sql`finished_at is null`),
    // Listing indexes are ascending: a backward scan serves `order by created_at desc, id desc`.
    // Finishing a job is not HOT (it leaves the claim index), so it writes an entry in every index
    // that holds the row: keep the always-present ones few, and make the rest partial.
    uniqueIndex("uq_job_queue_workflow_step_id").on(t.workflowStepId).where(sql`workflow_step_id is not null`),
    index("idx_job_queue_org_created").on(t.organizationId, t.createdAt, t.id).where(sql`organization_id is not null`),
    index("idx_job_queue_created").on(t.createdAt, t.id),
    // Retention's candidates: finished standalone jobs, oldest first (src/store/retention/purge.ts).
    // Its columns are already indexed (the claim index's predicate, the step link), so no update
    // that was HOT stops being HOT; it costs one entry per finished standalone job, in an update
    // that writes index entries anyway (the row leaves the claim index): measured 2.21 → 3.23 index
    // entries and 43.8 → 49.8 µs PostgreSQL CPU per job (process-c10, --anatomy, 20,000 jobs). Jobs
    // of workflow runs are left out: they go with their run, and the sweep never walks past them.
    index("idx_job_queue_finished").on(t.finishedAt).where(sql`finished_at is not null and workflow_step_id is null`),
  ],
);

/*
 * The ledger. Every attempt and every transition stays readable through the views `job_attempts`
 * and `job_events` (migration 0003), but routine ones cost no rows: the job row holds the
 * attempt it is running or that succeeded, with the ids its ENQUEUED, LEASED and SUCCEEDED events
 * got from the event log's sequence, and the views derive those from it (ENQUEUED for the row's
 * whole life: nothing changes what it is made of). Every other attempt (failed,
 * retried, expired, canceled, succeeded before a requeue) is a row of job_attempt_log, and every
 * other event a row of job_event_log, written by the statement that makes the transition; when an
 * attempt leaves the job row, its derived events are written out with the ids they already had.
 *
 * Neither log has a foreign key to its job: the referential check is a trigger per inserted row
 * (on a 500-job claim it cost 11 of 31 ms of server time). Every writer inserts in the statement
 * that locks or creates the job row, and nothing deletes jobs without deleting their ledger.
 */

/** Attempts that left the job row: how each ended. Written once, never updated. */
export const jobAttemptLog = runledger.table(
  "job_attempt_log",
  {
    id: uuid("id").primaryKey(),
    jobId: uuid("job_id").notNull(),
    runNumber: integer("run_number").notNull(),
    attempt: integer("attempt").notNull(),
    workerId: text("worker_id").notNull(),
    leasedAt: tstz("leased_at").notNull().defaultNow(),
    startedAt: tstz("started_at").notNull().defaultNow(),
    finishedAt: tstz("finished_at"),
    outcome: jobFailureKind("outcome"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    retryDelayMs: bigint("retry_delay_ms", { mode: "number" }),
    claimOrigin: claimOrigin("claim_origin").notNull().default("DIRECT"),
    executionStartedPersistedAt: tstz("execution_started_persisted_at"),
    createdAt: tstz("created_at").notNull().defaultNow(),
  },
  (t) => [
    unique("uq_job_attempts_job_run_attempt").on(t.jobId, t.runNumber, t.attempt),
    check("ck_job_attempts_run_number_positive", sql`${t.runNumber} > 0`),
    check("ck_job_attempts_attempt_positive", sql`${t.attempt} > 0`),
    check("ck_job_attempts_worker_id_not_blank", sql`btrim(${t.workerId}) <> ''`),
    check("ck_job_attempts_retry_delay_non_negative", sql`${t.retryDelayMs} is null or ${t.retryDelayMs} >= 0`),
    index("idx_job_attempts_created").on(t.createdAt),
  ],
);

/** Transitions that are not derived from a job row; ids come from one sequence with the derived ones. */
export const jobEventLog = runledger.table(
  "job_event_log",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity({ name: "job_events_id_seq" }),
    jobId: uuid("job_id").notNull(),
    runNumber: integer("run_number").notNull(),
    attempt: integer("attempt"),
    eventType: jobEventType("event_type").notNull(),
    stage: text("stage"),
    progressDone: bigint("progress_done", { mode: "number" }),
    progressTotal: bigint("progress_total", { mode: "number" }),
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull().default({}),
    occurredAt: tstz("occurred_at").notNull().defaultNow(),
  },
  (t) => [
    check("ck_job_events_attempt_positive", sql`${t.attempt} is null or ${t.attempt} > 0`),
    index("idx_job_events_job_run").on(t.jobId, t.runNumber, t.id),
    index("idx_job_events_type_occurred").on(t.eventType, t.occurredAt),
  ],
);

/** Every attempt of every job, one row per claim (a view, migration 0003). */
export const jobAttempts = runledger
  .view("job_attempts", {
    id: uuid("id").notNull(),
    jobId: uuid("job_id").notNull(),
    runNumber: integer("run_number").notNull(),
    attempt: integer("attempt").notNull(),
    workerId: text("worker_id").notNull(),
    leasedAt: tstz("leased_at").notNull(),
    startedAt: tstz("started_at").notNull(),
    finishedAt: tstz("finished_at"),
    outcome: jobFailureKind("outcome"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    retryDelayMs: bigint("retry_delay_ms", { mode: "number" }),
    claimOrigin: claimOrigin("claim_origin").notNull(),
    executionStartedPersistedAt: tstz("execution_started_persisted_at"),
    createdAt: tstz("created_at").notNull(),
  })
  .existing();

/** Append-only audit log of every job transition, in id order (a view, migration 0003). */
export const jobEvents = runledger
  .view("job_events", {
    id: bigint("id", { mode: "number" }).notNull(),
    jobId: uuid("job_id").notNull(),
    runNumber: integer("run_number").notNull(),
    attempt: integer("attempt"),
    eventType: jobEventType("event_type").notNull(),
    stage: text("stage"),
    progressDone: bigint("progress_done", { mode: "number" }),
    progressTotal: bigint("progress_total", { mode: "number" }),
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull(),
    occurredAt: tstz("occurred_at").notNull(),
  })
  .existing();

/** The last terminal failure of each job, with the payload it failed on. */
export const jobDeadLetters = runledger.table(
  "job_dead_letters",
  {
    jobId: uuid("job_id")
      .primaryKey()
      .references(() => jobQueue.id, { onDelete: "cascade" }),
    jobType: text("job_type")
      .notNull()
      .references(() => jobDefinitions.jobType, { onDelete: "restrict" }),
    organizationId: uuid("organization_id"),
    runNumber: integer("run_number").notNull(),
    attempt: integer("attempt").notNull(),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    payloadSnapshot: jsonb("payload_snapshot").$type<unknown>().notNull(),
    checkpointSnapshot: jsonb("checkpoint_snapshot").$type<unknown>(),
    failedAt: tstz("failed_at").notNull().defaultNow(),
    createdAt: tstz("created_at").notNull().defaultNow(),
  },
  (t) => [
    check("ck_job_dead_letters_attempt_positive", sql`${t.attempt} > 0`),
    index("idx_job_dead_letters_failed").on(t.failedAt),
  ],
);

/** Free-form log lines attached to a job run by handlers or operators. */
export const jobLogs = runledger.table(
  "job_logs",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    jobId: uuid("job_id").notNull(),
    runNumber: integer("run_number").notNull(),
    attempt: integer("attempt"),
    level: text("level").notNull(),
    message: text("message").notNull(),
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull().default({}),
    occurredAt: tstz("occurred_at").notNull().defaultNow(),
  },
  (t) => [
    check("ck_job_logs_run_number_positive", sql`${t.runNumber} > 0`),
    check("ck_job_logs_attempt_non_negative", sql`${t.attempt} is null or ${t.attempt} >= 0`),
    check("ck_job_logs_level_not_blank", sql`btrim(${t.level}) <> ''`),
    check("ck_job_logs_message_not_blank", sql`btrim(${t.message}) <> ''`),
    index("idx_job_logs_job_run").on(t.jobId, t.runNumber, t.id),
    index("idx_job_logs_level_occurred").on(t.level, t.occurredAt),
  ],
);

/** Per-job-type operator configuration; the runtime never reads it. */
export const jobRuntimeConfigs = runledger.table(
  "job_runtime_configs",
  {
    jobType: text("job_type")
      .primaryKey()
      .references(() => jobDefinitions.jobType, { onDelete: "cascade" }),
    schemaVersion: integer("schema_version").notNull(),
    config: jsonb("config").$type<Record<string, unknown>>().notNull(),
    updatedByUserId: uuid("updated_by_user_id"),
    ...timestamps,
  },
  (t) => [
    check("ck_job_runtime_configs_schema_version_positive", sql`${t.schemaVersion} > 0`),
    check("ck_job_runtime_configs_config_object", sql`jsonb_typeof(${t.config}) = 'object'`),
  ],
);
