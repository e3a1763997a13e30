import {
  canonicalWorkflowRunRequest,
  newId,
  RunledgerError,
  validateWorkflowRunEnqueue,
  type WorkflowRunEnqueue,
  type WorkflowStepEnqueue,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import {
  type EdgeInput,
  enqueueRun,
  insertRun,
  insertStepRows,
  lockEnabledDefinitions,
  runByIdempotencyKeyForShare,
  type StepInput,
  stepAndEdgeParams,
} from "../sql/workflows/enqueue.ts";
import { readRun } from "../sql/workflows/reads.ts";
import type { WorkflowRunRow } from "../sql/workflows/rows.ts";
import { ATTR, beginSend } from "../telemetry.ts";
import { checkRequestSize, DEFINITION_HINT, fail, isStorableText, isUuid, jsonText } from "../validate.ts";
import { propagateSteps, recomputeRunStatus } from "./propagate.ts";
import { runFromRow, type WorkflowRunRecord } from "./records.ts";
import { requireReadCommitted } from "./run-locks.ts";

/** A run as `enqueueWorkflowRun` returns it; `created` is false for an idempotent retry. */
export type EnqueuedWorkflowRun = WorkflowRunRecord & { created: boolean };

/**
 * Edge validation the builders cannot do: ids, values PostgreSQL cannot store, and the JSON
 * limits, per value and for the metadata and payloads together.
 */
export function checkStorable(
  steps: readonly WorkflowStepEnqueue[],
  organizationId: string | null,
  metadata: unknown = {},
  workflowType?: string,
): void {
  if (organizationId !== null && !isUuid(organizationId)) fail("workflow.invalid_dag", { field: "organizationId" });
  const texts = [jsonText(metadata ?? {}, "job.invalid_payload", "metadata")];
  if (typeof workflowType === "string" && !isStorableText(workflowType))
    fail("workflow.invalid_dag_workflow_type_blank");
  for (const [index, step] of steps.entries()) {
    if (step === null || typeof step !== "object") fail("workflow.invalid_dag", { stepIndex: index });
    if (typeof step.stepKey === "string" && !isStorableText(step.stepKey))
      fail("workflow.invalid_dag_step_key_blank", { stepIndex: index });
    if (typeof step.jobType === "string" && !isStorableText(step.jobType))
      fail("workflow.invalid_dag_job_type_blank", { stepKey: step.stepKey });
    if (step.organizationId != null && !isUuid(step.organizationId)) {
      fail("workflow.invalid_dag", { stepKey: step.stepKey, field: "organizationId" });
    }
    texts.push(jsonText(step.payload ?? {}, "job.invalid_payload", `steps.${index}.payload`));
  }
  checkRequestSize(texts);
}

/**
 * A step runs in its run's organization: naming another would create a job that organization
 * can see and cancel (cancelling a step of this run). `workflow.step_organization_mismatch`.
 */
export function checkStepOrganizations(steps: readonly WorkflowStepEnqueue[], runOrganizationId: string | null): void {
  for (const step of steps) {
    if (step.organizationId != null && step.organizationId !== runOrganizationId) {
      fail("workflow.step_organization_mismatch", { stepKey: step.stepKey });
    }
  }
}

/** Resolve and share-lock the enabled definitions of every JOB step; refuse missing or disabled ones. */
export async function lockDefinitions(tx: Executor, steps: readonly WorkflowStepEnqueue[]): Promise<void> {
  const wanted = jobTypesOf(steps);
  if (wanted.length === 0) return;
  const found = await lockEnabledDefinitions.run(tx, { jobTypes: wanted });
  const enabled = found.map((r) => r.job_type);
  if (enabled.length < wanted.length) throw definitionsMissing(wanted, enabled);
}

function jobTypesOf(steps: readonly WorkflowStepEnqueue[]): string[] {
  return [...new Set(steps.filter((s) => s.executionKind === "JOB").map((s) => s.jobType!))];
}

function definitionsMissing(wanted: readonly string[], enabled: readonly string[]): RunledgerError {
  const missing = wanted.filter((t) => !enabled.includes(t));
  return new RunledgerError("workflow.definition_not_found_or_disabled", {
    details: { jobTypes: missing, hint: DEFINITION_HINT },
  });
}

/**
 * Insert steps (BLOCKED, every prerequisite counted as pending) and their edges into a run,
 * freezing each JOB step's priority, attempts and timeout from its definition now. `existing`:
 * the run's steps by key, for edges from them (an append). Returns the new step ids by key.
 */
export async function insertSteps(
  tx: Executor,
  runId: string,
  runOrganizationId: string | null,
  steps: readonly WorkflowStepEnqueue[],
  existing: ReadonlyMap<string, string> = new Map(),
): Promise<Map<string, string>> {
  const { ids, rows, edges } = stepRows(runOrganizationId, steps, existing);
  await insertStepRows.run(tx, { runId, ...stepAndEdgeParams(rows, edges) });
  return ids;
}

/** Step rows (with fresh ids, in input order) and edge rows as the insert statements read them. */
function stepRows(
  runOrganizationId: string | null,
  steps: readonly WorkflowStepEnqueue[],
  existing: ReadonlyMap<string, string>,
): { ids: Map<string, string>; rows: StepInput[]; edges: EdgeInput[] } {
  const ids = new Map(steps.map((step) => [step.stepKey, newId()]));
  const rows = steps.map(
    (step): StepInput => ({
      id: ids.get(step.stepKey)!,
      stepKey: step.stepKey,
      executionKind: step.executionKind,
      jobType: step.jobType ?? null,
      organizationId: step.organizationId ?? runOrganizationId,
      payload: JSON.stringify(step.payload ?? {}),
      priority: step.priority ?? null,
      maxAttempts: step.maxAttempts ?? null,
      timeoutSeconds: step.timeoutSeconds ?? null,
      stage: step.executionKind === "JOB" ? (step.stage ?? "queued") : null,
      total: step.dependencies.length,
      pending: step.dependencies.length,
      unsatisfied: 0,
      jobId: null,
      concurrencyKey: step.executionKind === "JOB" ? (step.concurrencyKey ?? null) : null,
    }),
  );
  const edges = steps.flatMap((step) =>
    step.dependencies.map(
      (dependency): EdgeInput => ({
        prerequisite: (ids.get(dependency.prerequisiteStepKey) ?? existing.get(dependency.prerequisiteStepKey))!,
        dependent: ids.get(step.stepKey)!,
        mode: dependency.releaseMode ?? "ON_TERMINAL",
      }),
    ),
  );
  return { ids, rows, edges };
}

/**
 * Enqueue a workflow run in one transaction: validate the DAG, write the run, its steps and
 * edges, enqueue the root job steps and open root external gates. With an idempotency key, an
 * identical retry returns the existing run untouched and a different request fails with
 * `workflow.enqueue_conflicting_retry`. Unknown or disabled job types fail with
 * `workflow.definition_not_found_or_disabled`; nothing is written when a request is refused.
 */
export async function enqueueWorkflowRun(executor: Executor, input: WorkflowRunEnqueue): Promise<EnqueuedWorkflowRun> {
  validateWorkflowRunEnqueue(input);
  checkStorable(input.steps, input.organizationId, input.metadata, input.workflowType);
  checkStepOrganizations(input.steps, input.organizationId);
  const send = beginSend({
    destination: input.workflowType,
    count: input.steps.length,
    attributes: { [ATTR.workflowType]: input.workflowType },
  });
  try {
    const run = await enqueueChecked(executor, input, send?.traceContext ?? null);
    send?.span?.setAttribute(ATTR.workflowRunId, run.id);
    send?.end();
    return run;
  } catch (error) {
    send?.fail(error instanceof RunledgerError ? error.code : "db.query_failed");
    throw error;
  }
}

async function enqueueChecked(
  executor: Executor,
  input: WorkflowRunEnqueue,
  traceContext: string | null,
): Promise<EnqueuedWorkflowRun> {
  const keyed = input.idempotencyKey !== null;
  if (!keyed) return enqueueUnkeyed(executor, input, traceContext);
  const snapshot = JSON.stringify(canonicalWorkflowRunRequest(input));
  if (!isStorableText(input.idempotencyKey!)) fail("workflow.invalid_dag_idempotency_key_blank");
  return translating(() =>
    executor.transaction(async (tx) => {
      await requireReadCommitted(tx, "workflow.enqueue_idempotency_unsupported_isolation");
      const runId = newId();
      const [inserted] = await insertRun.run(tx, {
        id: runId,
        workflowType: input.workflowType,
        organizationId: input.organizationId,
        idempotencyKey: input.idempotencyKey,
        metadata: JSON.stringify(input.metadata ?? {}),
        snapshot,
        traceContext,
      });
      if (inserted === undefined) return { ...(await existingRun(tx, input, snapshot)), created: false };

      await lockDefinitions(tx, input.steps);
      const ids = await insertSteps(tx, runId, input.organizationId, input.steps);
      const roots = input.steps.filter((s) => s.dependencies.length === 0).map((s) => ids.get(s.stepKey)!);
      // Nobody can hold the step-release lock of a run that is not committed yet: no need to take it.
      await propagateSteps(tx, { decide: roots });
      await recomputeRunStatus(tx, runId);
      const [run] = await readRun.run(tx, { id: runId });
      return { ...runFromRow(run!), created: true };
    }),
  );
}

/** The one-statement enqueue of a run without an idempotency key (see `enqueueRun`). */
async function enqueueUnkeyed(
  executor: Executor,
  input: WorkflowRunEnqueue,
  traceContext: string | null,
): Promise<EnqueuedWorkflowRun> {
  const runId = newId();
  const wanted = jobTypesOf(input.steps);
  const { rows, edges } = stepRows(input.organizationId, input.steps, new Map());
  // Roots are released at once: JOB roots get their job's id now.
  const released = rows.map((row) => ({
    ...row,
    jobId: row.total === 0 && row.executionKind === "JOB" ? newId() : null,
  }));
  // Non-roots start BLOCKED and JOB roots ENQUEUED, so the run is RUNNING unless it is all open gates.
  const status = rows.every((row) => row.total === 0 && row.executionKind === "EXTERNAL")
    ? "WAITING_FOR_EXTERNAL"
    : "RUNNING";
  const [row] = await translating(() =>
    enqueueRun.run(executor, {
      id: runId,
      workflowType: input.workflowType,
      organizationId: input.organizationId,
      metadata: JSON.stringify(input.metadata ?? {}),
      status,
      jobTypes: wanted,
      ...stepAndEdgeParams(released, edges),
      traceContext,
    }),
  );
  if (row?.id == null) throw definitionsMissing(wanted, row?.enabled ?? []);
  return { ...runFromRow(row), created: true };
}

async function existingRun(tx: Executor, input: WorkflowRunEnqueue, snapshot: string): Promise<WorkflowRunRecord> {
  const [row] = await queryRows<WorkflowRunRow & { same: boolean; legacy: boolean }>(
    tx,
    runByIdempotencyKeyForShare(input, snapshot),
  );
  if (row === undefined) throw new RunledgerError("workflow.internal_state", { internal: "conflicting run not found" });
  if (row.legacy) throw new RunledgerError("workflow.legacy_idempotency_snapshot_missing");
  if (!row.same) throw new RunledgerError("workflow.enqueue_conflicting_retry");
  return runFromRow(row);
}
