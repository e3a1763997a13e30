import { type SQL, sql } from "drizzle-orm";
import type { WorkflowDependencyReleaseMode } from "../../../core/index.ts";
import { columnParams, statement } from "../../query.ts";
import { jobDefinitions, workflowRuns, workflowStepDependencies, workflowSteps } from "../../schema/index.ts";
import { releasedJobsCtes } from "./propagate.ts";
import type { WorkflowRunRow } from "./rows.ts";

/** `enqueueRun`'s row: the enabled job types it found and, when all were, the run it inserted. */
export type EnqueuedRunRow = { enabled: string[] | null } & (WorkflowRunRow | { [K in keyof WorkflowRunRow]: null });

/** A step as the enqueue statements read it, in input order. */
export interface StepInput {
  id: string;
  stepKey: string;
  executionKind: "JOB" | "EXTERNAL";
  jobType: string | null;
  organizationId: string | null;
  /** JSON text. */
  payload: string;
  /** Null: the definition's. */
  priority: number | null;
  maxAttempts: number | null;
  timeoutSeconds: number | null;
  stage: string | null;
  /** Prerequisites, and of those not finished (`pending`) and finished unsatisfied. */
  total: number;
  pending: number;
  unsatisfied: number;
  /** A root's job, released with the run (the one-statement enqueue); null otherwise. */
  jobId: string | null;
  concurrencyKey: string | null;
}

/** An edge as the enqueue statements read it. */
export interface EdgeInput {
  prerequisite: string;
  dependent: string;
  mode: WorkflowDependencyReleaseMode;
}

/*
 * Steps and edges travel as one array per column (`columnParams`, unnest), like job batches,
 * rather than one jsonb document each. Measured on the one-statement enqueue of a 1→98→1 run
 * (100 steps, 196 edges) on a shared, loaded 2-core machine: the statement alone, 300 runs each
 * way interleaved, median 21.7 → 19.3 ms and 3.9 → 3.5 ms (two sessions); enqueueWorkflowRun,
 * 300 in a row, before/after alternated three times: median 9.2 → 7.3, 10.1 → 6.3, 6.6 → 4.4 ms.
 */
const STEP_COLUMNS = {
  ids: "id",
  stepKeys: "stepKey",
  kinds: "executionKind",
  stepJobTypes: "jobType",
  organizationIds: "organizationId",
  payloads: "payload",
  priorities: "priority",
  maxAttempts: "maxAttempts",
  timeouts: "timeoutSeconds",
  stages: "stage",
  totals: "total",
  pendings: "pending",
  unsatisfieds: "unsatisfied",
  jobIds: "jobId",
  concurrencyKeys: "concurrencyKey",
} as const;

const EDGE_COLUMNS = { prerequisites: "prerequisite", dependents: "dependent", modes: "mode" } as const;

/** The parameters of `stepInput` and `edgeInput`. */
export const stepAndEdgeParams = (steps: readonly StepInput[], edges: readonly EdgeInput[]) => ({
  ...columnParams(steps, STEP_COLUMNS, ["payloads"]),
  ...columnParams(edges, EDGE_COLUMNS),
});

const p = sql.placeholder;

/** The steps as rows `i`, with their input position `ord`. */
const stepInput = sql`unnest(${p("ids")}::uuid[], ${p("stepKeys")}::text[],
      ${p("kinds")}::runledger.workflow_step_execution_kind[], ${p("stepJobTypes")}::text[],
      ${p("organizationIds")}::uuid[], ${p("payloads")}::jsonb[], ${p("priorities")}::int[],
      ${p("maxAttempts")}::int[], ${p("timeouts")}::int[], ${p("stages")}::text[], ${p("totals")}::int[],
      ${p("pendings")}::int[], ${p("unsatisfieds")}::int[], ${p("jobIds")}::uuid[], ${p("concurrencyKeys")}::text[])
      with ordinality as t(id, step_key, execution_kind, job_type, organization_id, payload, priority, max_attempts,
        timeout_seconds, stage, total, pending, unsatisfied, job_id, concurrency_key, ord)`;

/** The edges as rows `e`. */
const edgeInput = sql`unnest(${p("prerequisites")}::uuid[], ${p("dependents")}::uuid[],
      ${p("modes")}::runledger.workflow_dependency_release_mode[]) as e(prerequisite, dependent, mode)`;

/*
 * A run with an idempotency key is a handful of prepared statements in one transaction (insert
 * the run or find the existing one, lock the definitions, insert steps and edges, release the
 * roots, derive the status, read the run); appends reuse its pieces. Runs without a key take the
 * one-statement path below.
 */
export const insertRun = statement<Pick<WorkflowRunRow, "id">>(
  "runledger_workflow_insert_run",
  sql`insert into ${workflowRuns} (id, workflow_type, organization_id, idempotency_key, metadata, enqueue_request,
      trace_context)
    values (${sql.placeholder("id")}::uuid, ${sql.placeholder("workflowType")}, ${sql.placeholder("organizationId")}::uuid,
      ${sql.placeholder("idempotencyKey")}, ${sql.placeholder("metadata")}::jsonb, ${sql.placeholder("snapshot")}::jsonb,
      ${sql.placeholder("traceContext")}::text)
    on conflict do nothing
    returning id`,
);

/**
 * The enabled definitions among `jobTypes`, share-locked so none is disabled or renamed before the
 * steps that froze its settings commit. Rows: the job types found.
 */
export const lockEnabledDefinitions = statement<{ job_type: string }>(
  "runledger_workflow_lock_definitions",
  sql`select job_type from ${jobDefinitions}
    where is_enabled and job_type = any(${sql.placeholder("jobTypes")}::text[]) for share`,
);

/**
 * A run's steps (BLOCKED, counters from the input) and their edges in one round trip, each JOB
 * step's priority, attempts and timeout frozen from its definition (keyed enqueues, appends).
 */
export const insertStepRows = statement(
  "runledger_workflow_insert_steps",
  sql`
    with input as (
      select * from ${stepInput}
    ),
    inserted as (
      insert into ${workflowSteps} (id, workflow_run_id, step_key, execution_kind, job_type, priority, max_attempts,
        timeout_seconds, stage, organization_id, payload, dependency_count_total, dependency_count_pending,
        dependency_count_unsatisfied, concurrency_key)
      select i.id, ${sql.placeholder("runId")}::uuid, i.step_key, i.execution_kind, i.job_type,
        case when i.execution_kind = 'JOB' then coalesce(i.priority, d.default_priority) end,
        case when i.execution_kind = 'JOB' then coalesce(i.max_attempts, d.max_attempts) end,
        case when i.execution_kind = 'JOB' then coalesce(i.timeout_seconds, d.default_timeout_seconds) end,
        i.stage, i.organization_id, i.payload, i.total, i.pending, i.unsatisfied, i.concurrency_key
      from input i left join ${jobDefinitions} d on d.job_type = i.job_type
      order by i.ord
    )
    insert into ${workflowStepDependencies} (workflow_run_id, prerequisite_step_id, dependent_step_id, release_mode)
    select ${sql.placeholder("runId")}::uuid, e.prerequisite, e.dependent, e.mode
    from ${edgeInput}`,
);

/*
 * A run without an idempotency key is enqueued by one statement, no transaction of its own: lock
 * the enabled definitions, and only if every JOB step's type is among them insert the run (its
 * status derived from the DAG), its steps with the roots already released (ENQUEUED with their
 * job, or WAITING_FOR_EXTERNAL), the edges, the roots' jobs and ENQUEUED events, and notify.
 * The jobs are read from the steps' RETURNING rows, so they carry the settings the steps froze.
 * Measured on 300 sequential 1→20→1 enqueues (no worker, after the edge foreign keys were gone):
 * 9 round trips (BEGIN … COMMIT) → 1, backend CPU ~3.1 → ~1.5 ms per run, Node CPU ~2.3 → ~1.1 ms,
 * wall time ~5.3 → ~3.1 ms. In the bench's workflow replica the 100 enqueues then take ~0.5 s
 * instead of ~0.9 s under the worker's load (~1,700 → ~2,050 steps/s).
 */
export const enqueueRun = statement<EnqueuedRunRow>(
  "runledger_workflow_enqueue_run",
  sql`
  with defs as (
    select job_type, default_priority, max_attempts, default_timeout_seconds from ${jobDefinitions}
    where is_enabled and job_type = any(${sql.placeholder("jobTypes")}::text[])
    for share
  ),
  found as (
    select array_agg(job_type) as enabled,
      count(*) = cardinality(${sql.placeholder("jobTypes")}::text[]) as ok
    from defs
  ),
  run as (
    insert into ${workflowRuns} (id, workflow_type, organization_id, metadata, status, trace_context)
    select ${sql.placeholder("id")}::uuid, ${sql.placeholder("workflowType")}, ${sql.placeholder("organizationId")}::uuid,
      ${sql.placeholder("metadata")}::jsonb, ${sql.placeholder("status")}::runledger.workflow_run_status,
      ${sql.placeholder("traceContext")}::text
    from found where ok
    returning *
  ),
  input as (
    select * from ${stepInput}
  ),
  steps as (
    insert into ${workflowSteps} (id, workflow_run_id, step_key, execution_kind, job_type, priority, max_attempts,
      timeout_seconds, stage, organization_id, payload, dependency_count_total, dependency_count_pending, status,
      job_id, released_at, concurrency_key)
    select i.id, ${sql.placeholder("id")}::uuid, i.step_key, i.execution_kind, i.job_type,
      case when i.execution_kind = 'JOB' then coalesce(i.priority, d.default_priority) end,
      case when i.execution_kind = 'JOB' then coalesce(i.max_attempts, d.max_attempts) end,
      case when i.execution_kind = 'JOB' then coalesce(i.timeout_seconds, d.default_timeout_seconds) end,
      i.stage, i.organization_id, i.payload, i.total, i.total,
      case when i.total > 0 then 'BLOCKED' when i.execution_kind = 'JOB' then 'ENQUEUED'
        else 'WAITING_FOR_EXTERNAL' end::runledger.workflow_step_status,
      i.job_id, case when i.total = 0 then now() end, i.concurrency_key
    from input i left join defs d on d.job_type = i.job_type
    where (select ok from found)
    order by i.ord
    returning id, job_id, job_type, organization_id, payload, priority, max_attempts, timeout_seconds, stage,
      concurrency_key
  ),
  edges as (
    insert into ${workflowStepDependencies} (workflow_run_id, prerequisite_step_id, dependent_step_id, release_mode)
    select ${sql.placeholder("id")}::uuid, e.prerequisite, e.dependent, e.mode
    from ${edgeInput}
    where (select ok from found)
  ),
  ${releasedJobsCtes("job_id", sql`steps where job_id is not null`, sql`${sql.placeholder("traceContext")}::text`)}
  select f.enabled, r.* from found f cross join notified left join run r on true`,
);

/**
 * The run enqueued under `key`, share-locked, with whether its stored request is `snapshot`
 * (`same`) and whether it was enqueued before requests were stored (`legacy`).
 */
export function runByIdempotencyKeyForShare(
  key: { workflowType: string; idempotencyKey: string | null; organizationId: string | null },
  snapshot: string,
): SQL {
  return sql`select *, enqueue_request = ${snapshot}::jsonb as same, enqueue_request is null as legacy
      from ${workflowRuns}
      where workflow_type = ${key.workflowType} and idempotency_key = ${key.idempotencyKey}
        and organization_id is not distinct from ${key.organizationId}::uuid
      for share`;
}
