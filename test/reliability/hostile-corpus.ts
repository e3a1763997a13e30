import * as v from "valibot";
import {
  ALL_ORGANIZATIONS,
  type ErrorCode,
  MAX_IDENTIFIER_BYTES,
  MAX_JSON_BYTES,
  MAX_JSON_DEPTH,
  MAX_WORKFLOW_STEPS,
  WorkflowDagBuilder,
  type WorkflowRunEnqueue,
  type WorkflowStepEnqueue,
} from "../../src/core/index.ts";
import { JobCatalog } from "../../src/runtime/index.ts";
import {
  appendWorkflowSteps,
  cancelJob,
  cancelWorkflowRun,
  completeExternalWorkflowStep,
  enqueueJob,
  enqueueJobs,
  enqueueWorkflowRun,
  getJobMetrics,
  insertJobDefinitionIfMissing,
  insertJobLog,
  listJobEvents,
  listJobLogs,
  listJobSchedules,
  listJobs,
  listWorkflowRuns,
  type RetryWorkflowRunInput,
  type RunledgerDb,
  retryWorkflowRun,
  setJobScheduleActive,
  setJobTypeLimits,
  setKeyLimit,
  updateJobDefinition,
  updateWorkflowStepAndPendingJobPayload,
  upsertJobDefinition,
  upsertJobRuntimeConfig,
  upsertJobSchedule,
} from "../../src/store/index.ts";
import {
  claimJobs,
  completeJobFailure,
  heartbeatJob,
  type LeaseIdentity,
  releaseUnstartedJobClaim,
  updateJobProgress,
} from "../../src/store/worker.ts";
import { jobStep } from "../core/workflow-fixtures.ts";

/*
 * The hostile input corpus: requests every one of which must be refused with the code next to
 * it. `hostile-input.test.ts` runs them against a seeded database.
 */

/**
 * Marks request data: it must never appear in an error a client sees. (Identifiers the caller
 * chose, such as an unknown job type or step key, may come back in `details`; data never does.)
 */
export const MARKER = "s3cr3t-payload-marker";
export const SQLI = "x'; drop table runledger.job_queue; --";
export const NUL = `a\u0000${MARKER}`;
export const LONE = `a\ud800${MARKER}`;
export const TOO_LONG = `${MARKER}${"k".repeat(MAX_IDENTIFIER_BYTES)}`;
/** 300 KB: far over every identifier and label limit (a 2 MB worker id and a 100 KB job type were once stored). */
export const HUGE_LABEL = `${MARKER}${"k".repeat(300 * 1024)}`;
export const ORG = "00000000-0000-7000-8000-00000000000a";
export const T0 = new Date("2030-01-01T00:00:00Z");

export function nested(depth: number, kind: "object" | "array" = "object"): unknown {
  let value: unknown = MARKER;
  for (let i = 0; i < depth; i++) value = kind === "object" ? { [MARKER]: value } : [value];
  return value;
}
export const FIVE_MB = { blob: MARKER + "x".repeat(5 * 1024 * 1024) };
/** Just over the limit in UTF-8 bytes while under it in UTF-16 units. */
export const JUST_OVER = { blob: MARKER + "é".repeat(MAX_JSON_BYTES / 2) };
/** Under the per-value limit, but 17 of them exceed the per-request one. */
export const NEAR_LIMIT = { blob: MARKER + "x".repeat(1_000_000) };
export const circular: Record<string, unknown> = { marker: MARKER };
circular.self = circular;

export function step(stepKey: string, overrides: Partial<WorkflowStepEnqueue> = {}): WorkflowStepEnqueue {
  return jobStep(stepKey, [], { jobType: "hostile.ok", payload: {}, ...overrides });
}
export const external = (stepKey: string): WorkflowStepEnqueue =>
  step(stepKey, { executionKind: "EXTERNAL", jobType: null });
export const after = (...keys: string[]) =>
  keys.map((prerequisiteStepKey) => ({ prerequisiteStepKey, releaseMode: null }));
export const run = (steps: WorkflowStepEnqueue[], overrides: Partial<WorkflowRunEnqueue> = {}): WorkflowRunEnqueue => ({
  workflowType: "hostile.flow",
  organizationId: null,
  metadata: {},
  idempotencyKey: null,
  steps,
  ...overrides,
});
export const chain = (count: number) =>
  Array.from({ length: count }, (_, i) => step(`s${i}`, { dependencies: i ? after(`s${i - 1}`) : [] }));

export const catalog = new JobCatalog()
  .job("hostile.ok", async () => {}, { payload: v.object({ n: v.number() }) })
  .job("hostile.any", async () => {});
export const disabledCatalog = new JobCatalog().job("hostile.ok", async () => {}).enabled(false);

/** One hostile request and the code it must be refused with. */
export type Case = [name: string, code: ErrorCode, call: () => unknown];

/** What the cases need from the seeded database; read when a case runs, not when it is built. */
export interface CorpusContext {
  db: RunledgerDb;
  /** A run with an open external step `window`, a job step `after`, and an append under mutation key `taken`. */
  runId: () => string;
  /** The lease of a running `hostile.any` job. */
  lease: () => LeaseIdentity;
}

/**
 * The four refusals every string field gets: blank (unless `blank` is null: blank is allowed),
 * NUL, a lone surrogate, and 300 KB (`identifier.too_long` unless `long` says otherwise).
 */
export function textCases(
  field: string,
  invalid: ErrorCode,
  call: (value: string) => unknown,
  options: { blank?: ErrorCode | null; long?: ErrorCode; longValue?: string } = {},
): Case[] {
  const cases: Case[] = [];
  if (options.blank !== null) cases.push([`blank ${field}`, options.blank ?? invalid, () => call(" \t")]);
  cases.push(
    [`NUL in ${field}`, invalid, () => call(NUL)],
    [`lone surrogate in ${field}`, invalid, () => call(LONE)],
    [`${field} of 300 KB`, options.long ?? "identifier.too_long", () => call(options.longValue ?? HUGE_LABEL)],
  );
  return cases;
}

/** The three refusals every whole-number field gets: negative, fractional, past its range. */
export function numberCases(
  field: string,
  code: ErrorCode,
  call: (value: number) => unknown,
  overflow: number = 2 ** 31,
): Case[] {
  return [
    [`${field} -1`, code, () => call(-1)],
    [`${field} 1.5`, code, () => call(1.5)],
    [`${field} ${overflow.toLocaleString("en")}`, code, () => call(overflow)],
  ];
}

/** Requests a job of type `hostile.ok` (schema `{ n: number }`) accepts. */
export const ok = { jobType: "hostile.ok", payload: { n: 1 } };

/** The corpus, by group. */
export function hostileCorpus(ctx: CorpusContext): [group: string, cases: Case[]][] {
  const { db } = ctx;
  const nextFire = { name: "hostile-schedule", jobType: "hostile.ok", cronExpr: "0 0 * * * *", nextFireAt: T0 };
  const append = (overrides: Partial<Parameters<typeof appendWorkflowSteps>[1]> = {}) =>
    appendWorkflowSteps(db, {
      scope: ALL_ORGANIZATIONS,
      workflowRunId: ctx.runId(),
      mutationKey: "fresh",
      appendWindowStepKey: "window",
      steps: [step("new")],
      ...overrides,
    });

  const jobCases: Case[] = [
    ["5 MB payload", "payload.too_large", () => enqueueJob(db, { ...ok, payload: FIVE_MB })],
    ["payload one byte over 1 MiB in UTF-8", "payload.too_large", () => enqueueJob(db, { ...ok, payload: JUST_OVER })],
    [
      "payload nested 10,000 objects deep",
      "payload.too_deep",
      () => enqueueJob(db, { ...ok, payload: nested(10_000) }),
    ],
    [
      "payload nested 101 arrays deep",
      "payload.too_deep",
      () => enqueueJob(db, { ...ok, payload: nested(MAX_JSON_DEPTH + 1, "array") }),
    ],
    ["NUL in a payload string", "job.invalid_payload", () => enqueueJob(db, { ...ok, payload: { s: NUL } })],
    ["NUL in a payload key", "job.invalid_payload", () => enqueueJob(db, { ...ok, payload: { [NUL]: 1 } })],
    ["lone surrogate in a payload", "job.invalid_payload", () => enqueueJob(db, { ...ok, payload: [LONE] })],
    ["circular payload", "job.invalid_payload", () => enqueueJob(db, { ...ok, payload: circular })],
    ["BigInt in a payload", "job.invalid_payload", () => enqueueJob(db, { ...ok, payload: { n: 10n ** 30n } })],
    ["function as payload", "job.invalid_payload", () => enqueueJob(db, { ...ok, payload: () => MARKER })],
    ["NUL in the job type", "job.invalid_enqueue_request", () => enqueueJob(db, { jobType: NUL })],
    ["lone surrogate in the job type", "job.invalid_enqueue_request", () => enqueueJob(db, { jobType: LONE })],
    ["SQL-looking unknown job type", "job.definition_not_found_or_disabled", () => enqueueJob(db, { jobType: SQLI })],
    ["empty job type", "identifier.job_type_blank", () => enqueueJob(db, { jobType: "" })],
    ["whitespace job type", "identifier.job_type_blank", () => enqueueJob(db, { jobType: " \t\n\u00a0" })],
    ["non-string job type", "identifier.job_type_blank", () => enqueueJob(db, { jobType: 42 as never })],
    ["job type over 512 bytes", "identifier.too_long", () => enqueueJob(db, { jobType: TOO_LONG })],
    ["unknown job type", "job.definition_not_found_or_disabled", () => enqueueJob(db, { jobType: "hostile.nope" })],
    [
      "disabled job type",
      "job.definition_not_found_or_disabled",
      () => enqueueJob(db, { jobType: "hostile.disabled" }),
    ],
    ["NUL in the idempotency key", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, idempotencyKey: NUL })],
    [
      "lone surrogate in the idempotency key",
      "job.invalid_enqueue_request",
      () => enqueueJob(db, { ...ok, idempotencyKey: LONE }),
    ],
    [
      "whitespace idempotency key",
      "job.invalid_enqueue_request",
      () => enqueueJob(db, { ...ok, idempotencyKey: "  " }),
    ],
    [
      "idempotency key over 512 bytes",
      "identifier.too_long",
      () => enqueueJob(db, { ...ok, idempotencyKey: TOO_LONG }),
    ],
    [
      "same key, different payload",
      "job.idempotency_conflict",
      () => enqueueJob(db, { ...ok, payload: { n: 2 }, idempotencyKey: "taken" }),
    ],
    [
      "same key, different priority",
      "job.idempotency_conflict",
      () => enqueueJob(db, { ...ok, priority: 7, idempotencyKey: "taken" }),
    ],
    [
      "SQL-looking organization id",
      "job.invalid_enqueue_request",
      () => enqueueJob(db, { ...ok, organizationId: SQLI }),
    ],
    [
      "NUL in the organization id",
      "job.invalid_enqueue_request",
      () => enqueueJob(db, { ...ok, organizationId: `${ORG}\u0000` }),
    ],
    ["blank organization id", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, organizationId: " " })],
    ["priority 2^31", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, priority: 2 ** 31 })],
    ["priority -2^31 - 1", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, priority: -(2 ** 31) - 1 })],
    ["priority 1.5", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, priority: 1.5 })],
    ["priority NaN", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, priority: Number.NaN })],
    [
      "priority Infinity",
      "job.invalid_enqueue_request",
      () => enqueueJob(db, { ...ok, priority: Number.POSITIVE_INFINITY }),
    ],
    [
      "priority as a string",
      "job.invalid_enqueue_request",
      () => enqueueJob(db, { ...ok, priority: "1; select 1" as never }),
    ],
    ["max attempts 0", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, maxAttempts: 0 })],
    ["max attempts -1", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, maxAttempts: -1 })],
    ["max attempts 2.5", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, maxAttempts: 2.5 })],
    ["max attempts NaN", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, maxAttempts: Number.NaN })],
    ["max attempts 1e12", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, maxAttempts: 1e12 })],
    ["timeout 0", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, timeoutSeconds: 0 })],
    // One second more than a Node.js timer holds: such a timer fires after 1 ms.
    ["timeout 2,147,484 s", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, timeoutSeconds: 2_147_484 })],
    [
      "invalid next run date",
      "job.invalid_enqueue_request",
      () => enqueueJob(db, { ...ok, nextRunAt: new Date(Number.NaN) }),
    ],
    ["unknown stage", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, stage: MARKER as never })],
    ["null request", "job.invalid_enqueue_request", () => enqueueJob(db, null as never)],
    [
      "batch with a bad payload last",
      "job.invalid_payload",
      () => enqueueJobs(db, [ok, ok, { ...ok, payload: { s: NUL } }]),
    ],
    [
      "batch with an unknown type last",
      "job.definition_not_found_or_disabled",
      () => enqueueJobs(db, [ok, ok, { jobType: SQLI }]),
    ],
    ["batch with a deep payload", "payload.too_deep", () => enqueueJobs(db, [ok, { ...ok, payload: nested(10_000) }])],
    [
      "batch of 17 payloads of ~1 MB each",
      "payload.too_large",
      () =>
        enqueueJobs(
          db,
          Array.from({ length: 17 }, () => ({ ...ok, payload: NEAR_LIMIT })),
        ),
    ],
  ];

  const catalogCases: Case[] = [
    [
      "payload failing the valibot schema",
      "job.invalid_payload",
      () => catalog.enqueue(db, "hostile.ok", { n: MARKER } as never),
    ],
    ["payload missing a field", "job.invalid_payload", () => catalog.enqueue(db, "hostile.ok", {} as never)],
    ["payload of the wrong type", "job.invalid_payload", () => catalog.enqueue(db, "hostile.ok", [MARKER] as never)],
    [
      "job type unknown to the catalog",
      "catalog.unknown_job_type",
      () => catalog.enqueue(db, SQLI as never, {} as never),
    ],
    [
      "job type disabled in the catalog",
      "catalog.disabled_job_type",
      () => disabledCatalog.enqueue(db, "hostile.ok", {}),
    ],
    [
      "schemaless payload nested 10,000 deep",
      "payload.too_deep",
      () => catalog.enqueue(db, "hostile.any", nested(10_000)),
    ],
    ["schemaless 5 MB payload", "payload.too_large", () => catalog.enqueue(db, "hostile.any", FIVE_MB)],
    [
      "workflow step of a job type the catalog lacks",
      "workflow.invalid_dag_unknown_job_type",
      // @ts-expect-error an untyped caller's job type, which the catalog's types would refuse
      () => catalog.workflow("w").job("a", SQLI, {}),
    ],
  ];

  const workflowCases: Case[] = [
    [
      "cycle a → b → c → a",
      "workflow.invalid_dag_cycle",
      () =>
        enqueueWorkflowRun(
          db,
          run([
            step("a", { dependencies: after("c") }),
            step("b", { dependencies: after("a") }),
            step("c", { dependencies: after("b") }),
          ]),
        ),
    ],
    [
      "self-dependency",
      "workflow.invalid_dag_self_dependency",
      () => enqueueWorkflowRun(db, run([step("a", { dependencies: after("a") })])),
    ],
    [
      "unknown prerequisite step",
      "workflow.invalid_dag_missing_dependency",
      () => enqueueWorkflowRun(db, run([step("a", { dependencies: after("ghost") })])),
    ],
    [
      "duplicate step key",
      "workflow.invalid_dag_duplicate_step_key",
      () => enqueueWorkflowRun(db, run([step("a"), step("a")])),
    ],
    ["no steps", "workflow.invalid_dag_empty", () => enqueueWorkflowRun(db, run([]))],
    ["10,000-step chain", "workflow.invalid_dag_too_many_steps", () => enqueueWorkflowRun(db, run(chain(10_000)))],
    [
      "1,001 independent steps",
      "workflow.invalid_dag_too_many_steps",
      () => enqueueWorkflowRun(db, run(Array.from({ length: MAX_WORKFLOW_STEPS + 1 }, (_, i) => step(`s${i}`)))),
    ],
    [
      "10,000-step builder DAG",
      "workflow.invalid_dag_too_many_steps",
      () => {
        const builder = WorkflowDagBuilder.new("hostile.flow", {});
        for (let i = 0; i < 10_000; i++) builder.job(`s${i}`, "hostile.ok", {});
        return builder.build();
      },
    ],
    [
      "step payload nested 10,000 deep",
      "payload.too_deep",
      () => enqueueWorkflowRun(db, run([step("a", { payload: nested(10_000) })])),
    ],
    ["5 MB step payload", "payload.too_large", () => enqueueWorkflowRun(db, run([step("a", { payload: FIVE_MB })]))],
    [
      "17 step payloads of ~1 MB each",
      "payload.too_large",
      () => enqueueWorkflowRun(db, run(Array.from({ length: 17 }, (_, i) => step(`s${i}`, { payload: NEAR_LIMIT })))),
    ],
    [
      "NUL in a step payload",
      "job.invalid_payload",
      () => enqueueWorkflowRun(db, run([step("a", { payload: { s: NUL } })])),
    ],
    [
      "metadata nested 10,000 deep",
      "payload.too_deep",
      () => enqueueWorkflowRun(db, run([step("a")], { metadata: nested(10_000) })),
    ],
    [
      "lone surrogate in metadata",
      "job.invalid_payload",
      () => enqueueWorkflowRun(db, run([step("a")], { metadata: { s: LONE } })),
    ],
    ["NUL in a step key", "workflow.invalid_dag_step_key_blank", () => enqueueWorkflowRun(db, run([step(NUL)]))],
    ["whitespace step key", "workflow.invalid_dag_step_key_blank", () => enqueueWorkflowRun(db, run([step(" \t")]))],
    ["step key over 512 bytes", "identifier.too_long", () => enqueueWorkflowRun(db, run([step(TOO_LONG)]))],
    [
      "whitespace workflow type",
      "workflow.invalid_dag_workflow_type_blank",
      () => enqueueWorkflowRun(db, run([step("a")], { workflowType: "\n" })),
    ],
    [
      "workflow type over 512 bytes",
      "identifier.too_long",
      () => enqueueWorkflowRun(db, run([step("a")], { workflowType: TOO_LONG })),
    ],
    [
      "whitespace step job type",
      "workflow.invalid_dag_job_type_blank",
      () => enqueueWorkflowRun(db, run([step("a", { jobType: "  " })])),
    ],
    [
      "NUL in a step job type",
      "workflow.invalid_dag_job_type_blank",
      () => enqueueWorkflowRun(db, run([step("a", { jobType: NUL })])),
    ],
    [
      "SQL-looking step job type",
      "workflow.definition_not_found_or_disabled",
      () => enqueueWorkflowRun(db, run([step("a"), step("b", { jobType: SQLI })])),
    ],
    [
      "disabled step job type",
      "workflow.definition_not_found_or_disabled",
      () => enqueueWorkflowRun(db, run([step("a"), step("b", { jobType: "hostile.disabled" })])),
    ],
    [
      "step priority NaN",
      "workflow.invalid_dag_step_priority_out_of_range",
      () => enqueueWorkflowRun(db, run([step("a", { priority: Number.NaN })])),
    ],
    [
      "step priority 2^31",
      "workflow.invalid_dag_step_priority_out_of_range",
      () => enqueueWorkflowRun(db, run([step("a", { priority: 2 ** 31 })])),
    ],
    [
      "NUL in the workflow type",
      "workflow.invalid_dag_workflow_type_blank",
      () => enqueueWorkflowRun(db, run([step("a")], { workflowType: NUL })),
    ],
    [
      "lone surrogate in the workflow type",
      "workflow.invalid_dag_workflow_type_blank",
      () => enqueueWorkflowRun(db, run([step("a")], { workflowType: LONE })),
    ],
    [
      "step in another organization than its run's",
      "workflow.step_organization_mismatch",
      () => enqueueWorkflowRun(db, run([step("a", { organizationId: ORG })])),
    ],
    [
      "step timeout 2,147,484 s",
      "workflow.invalid_dag_step_timeout_seconds_out_of_range",
      () => enqueueWorkflowRun(db, run([step("a", { timeoutSeconds: 2_147_484 })])),
    ],
    [
      "step max attempts -1",
      "workflow.invalid_dag_step_max_attempts_non_positive",
      () => enqueueWorkflowRun(db, run([step("a", { maxAttempts: -1 })])),
    ],
    [
      "step max attempts 1.5",
      "workflow.invalid_dag_step_max_attempts_out_of_range",
      () => enqueueWorkflowRun(db, run([step("a", { maxAttempts: 1.5 })])),
    ],
    [
      "step max attempts NaN",
      "workflow.invalid_dag_step_max_attempts_out_of_range",
      () => enqueueWorkflowRun(db, run([step("a", { maxAttempts: Number.NaN })])),
    ],
    [
      "SQL-looking organization id",
      "workflow.invalid_dag",
      () => enqueueWorkflowRun(db, run([step("a")], { organizationId: SQLI })),
    ],
    [
      "NUL in the idempotency key",
      "workflow.invalid_dag_idempotency_key_blank",
      () => enqueueWorkflowRun(db, run([step("a")], { idempotencyKey: NUL })),
    ],
    [
      "whitespace idempotency key",
      "workflow.invalid_dag_idempotency_key_blank",
      () => enqueueWorkflowRun(db, run([step("a")], { idempotencyKey: " " })),
    ],
    [
      "same key, different steps",
      "workflow.enqueue_conflicting_retry",
      () => enqueueWorkflowRun(db, run([step("a", { payload: { n: MARKER } })], { idempotencyKey: "taken" })),
    ],
  ];

  const appendCases: Case[] = [
    ["NUL in the append window key", "workflow.append_window_missing", () => append({ appendWindowStepKey: NUL })],
    [
      "lone surrogate in the append window key",
      "workflow.append_window_missing",
      () => append({ appendWindowStepKey: LONE }),
    ],
    [
      "appended step in another organization",
      "workflow.step_organization_mismatch",
      () => append({ steps: [step("x", { organizationId: ORG })] }),
    ],
    [
      "cycle among appended steps",
      "workflow.invalid_dag_cycle",
      () => append({ steps: [step("x", { dependencies: after("y") }), step("y", { dependencies: after("x") })] }),
    ],
    [
      "appended self-dependency",
      "workflow.invalid_dag_self_dependency",
      () => append({ steps: [step("x", { dependencies: after("x") })] }),
    ],
    [
      "appended step on an unknown step key",
      "workflow.invalid_dag_missing_dependency",
      () => append({ steps: [step("x", { dependencies: after("ghost") })] }),
    ],
    [
      "appended key that already exists",
      "workflow.invalid_dag_duplicate_step_key",
      () => append({ steps: [step("after")] }),
    ],
    ["10,000 appended steps", "workflow.invalid_dag_too_many_steps", () => append({ steps: chain(10_000) })],
    [
      "append taking the run past 1,000 steps",
      "workflow.invalid_dag_too_many_steps",
      () => append({ steps: chain(MAX_WORKFLOW_STEPS - 1) }),
    ],
    [
      "appended payload nested 10,000 deep",
      "payload.too_deep",
      () => append({ steps: [step("x", { payload: nested(10_000) })] }),
    ],
    ["appended 5 MB payload", "payload.too_large", () => append({ steps: [step("x", { payload: FIVE_MB })] })],
    [
      "17 appended payloads of ~1 MB each",
      "payload.too_large",
      () => append({ steps: Array.from({ length: 17 }, (_, i) => step(`x${i}`, { payload: NEAR_LIMIT })) }),
    ],
    ["mutation metadata nested 10,000 deep", "payload.too_deep", () => append({ mutationMetadata: nested(10_000) })],
    ["NUL in the mutation key", "workflow.append_mutation_key_blank", () => append({ mutationKey: NUL })],
    ["whitespace mutation key", "workflow.append_mutation_key_blank", () => append({ mutationKey: "\t" })],
    ["mutation key over 512 bytes", "identifier.too_long", () => append({ mutationKey: TOO_LONG })],
    ["unknown append window", "workflow.append_window_missing", () => append({ appendWindowStepKey: SQLI })],
    [
      "append window that is a job step",
      "workflow.append_window_not_external",
      () => append({ appendWindowStepKey: "after" }),
    ],
    ["SQL-looking run id", "workflow.run_not_found", () => append({ workflowRunId: SQLI })],
    [
      "same mutation key, different steps",
      "workflow.append_conflicting_retry",
      () => append({ mutationKey: "taken", steps: [step("other")] }),
    ],
    [
      "external completion with a NUL reason",
      "workflow.external_step_invalid_terminal_status",
      () =>
        completeExternalWorkflowStep(db, {
          scope: ALL_ORGANIZATIONS,
          workflowRunId: ctx.runId(),
          stepKey: "window",
          terminalStatus: "SUCCEEDED",
          statusReason: NUL,
        }),
    ],
    [
      "external completion with a made-up status",
      "workflow.external_step_invalid_terminal_status",
      () =>
        completeExternalWorkflowStep(db, {
          scope: ALL_ORGANIZATIONS,
          workflowRunId: ctx.runId(),
          stepKey: "window",
          terminalStatus: SQLI as never,
        }),
    ],
    [
      "external completion of an unknown step key",
      "workflow.external_step_not_found",
      () =>
        completeExternalWorkflowStep(db, {
          scope: ALL_ORGANIZATIONS,
          workflowRunId: ctx.runId(),
          stepKey: SQLI,
          terminalStatus: "SUCCEEDED",
        }),
    ],
  ];

  const reasonCases: Case[] = [
    [
      "5 MB job cancel reason",
      "payload.too_large",
      () => cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: ctx.lease().jobId, reason: FIVE_MB.blob }),
    ],
    [
      "NUL in a job cancel reason",
      "job.invalid_state_transition",
      () => cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: ctx.lease().jobId, reason: NUL }),
    ],
    [
      "5 MB workflow cancel reason",
      "payload.too_large",
      () => cancelWorkflowRun(db, { scope: ALL_ORGANIZATIONS, workflowRunId: ctx.runId(), reason: FIVE_MB.blob }),
    ],
    ["SQL-looking job id to cancel", "job.not_found", () => cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: SQLI })],
  ];

  const scheduleCases: Case[] = [
    [
      "five-field cron",
      "job_schedule.invalid_cron",
      () => upsertJobSchedule(db, { ...nextFire, cronExpr: "0 * * * *" }),
    ],
    [
      "cron with second 61",
      "job_schedule.invalid_cron",
      () => upsertJobSchedule(db, { ...nextFire, cronExpr: "61 * * * * *" }),
    ],
    ["SQL-looking cron", "job_schedule.invalid_cron", () => upsertJobSchedule(db, { ...nextFire, cronExpr: SQLI })],
    [
      "cron with a NUL",
      "job_schedule.invalid_cron",
      () => upsertJobSchedule(db, { ...nextFire, cronExpr: "0 0 * * * *\u0000" }),
    ],
    ["empty cron", "job_schedule.invalid_cron", () => upsertJobSchedule(db, { ...nextFire, cronExpr: "" })],
    [
      "cron that never fires (30 February)",
      "job_schedule.invalid_cron",
      () => upsertJobSchedule(db, { ...nextFire, cronExpr: "0 0 0 30 2 *" }),
    ],
    [
      "invalid first fire date",
      "job_schedule.invalid_cron",
      () => upsertJobSchedule(db, { ...nextFire, nextFireAt: new Date(Number.NaN) }),
    ],
    [
      "whitespace schedule name",
      "job_schedule.invalid_name",
      () => upsertJobSchedule(db, { ...nextFire, name: "   " }),
    ],
    [
      "schedule name with surrounding spaces",
      "job_schedule.invalid_name",
      () => upsertJobSchedule(db, { ...nextFire, name: ` ${MARKER} ` }),
    ],
    ["NUL in the schedule name", "job_schedule.invalid_name", () => upsertJobSchedule(db, { ...nextFire, name: NUL })],
    [
      "lone surrogate in the schedule name",
      "job_schedule.invalid_name",
      () => upsertJobSchedule(db, { ...nextFire, name: LONE }),
    ],
    [
      "schedule name over 512 bytes",
      "identifier.too_long",
      () => upsertJobSchedule(db, { ...nextFire, name: TOO_LONG }),
    ],
    [
      "whitespace schedule job type",
      "identifier.job_type_blank",
      () => upsertJobSchedule(db, { ...nextFire, jobType: " " }),
    ],
    [
      "NUL in the schedule job type",
      "job_schedule.invalid_job_type",
      () => upsertJobSchedule(db, { ...nextFire, jobType: NUL }),
    ],
    [
      "schedule job type over 512 bytes",
      "identifier.too_long",
      () => upsertJobSchedule(db, { ...nextFire, jobType: TOO_LONG }),
    ],
    [
      "schedule payload nested 10,000 deep",
      "payload.too_deep",
      () => upsertJobSchedule(db, { ...nextFire, payloadTemplate: nested(10_000) }),
    ],
    [
      "5 MB schedule payload",
      "payload.too_large",
      () => upsertJobSchedule(db, { ...nextFire, payloadTemplate: FIVE_MB }),
    ],
    [
      "NUL in the schedule payload",
      "job.invalid_payload",
      () => upsertJobSchedule(db, { ...nextFire, payloadTemplate: { s: NUL } }),
    ],
    ["jitter -1", "job_schedule.invalid_jitter", () => upsertJobSchedule(db, { ...nextFire, maxJitterSeconds: -1 })],
    [
      "jitter NaN",
      "job_schedule.invalid_jitter",
      () => upsertJobSchedule(db, { ...nextFire, maxJitterSeconds: Number.NaN }),
    ],
    [
      "jitter over a day",
      "job_schedule.invalid_jitter",
      () => upsertJobSchedule(db, { ...nextFire, maxJitterSeconds: 86_401 }),
    ],
    [
      "SQL-looking organization id",
      "job_schedule.invalid_name",
      () => upsertJobSchedule(db, { ...nextFire, organizationId: SQLI }),
    ],
    [
      "pausing a schedule named with a NUL",
      "job_schedule.invalid_name",
      () => setJobScheduleActive(db, `nightly\u0000${MARKER}`, false, ALL_ORGANIZATIONS),
    ],
  ];

  const runningJobCases: Case[] = [
    [
      "checkpoint nested 10,000 deep",
      "payload.too_deep",
      () => updateJobProgress(db, { lease: ctx.lease(), checkpoint: nested(10_000) }),
    ],
    ["5 MB checkpoint", "payload.too_large", () => updateJobProgress(db, { lease: ctx.lease(), checkpoint: FIVE_MB })],
    [
      "NUL in a checkpoint",
      "job.invalid_progress",
      () => updateJobProgress(db, { lease: ctx.lease(), checkpoint: { s: NUL } }),
    ],
    [
      "circular checkpoint",
      "job.invalid_progress",
      () => updateJobProgress(db, { lease: ctx.lease(), checkpoint: circular }),
    ],
    [
      "progress NaN",
      "job.invalid_progress",
      () => updateJobProgress(db, { lease: ctx.lease(), progressDone: Number.NaN }),
    ],
    [
      "progress done past total",
      "job.invalid_progress",
      () => updateJobProgress(db, { lease: ctx.lease(), progressDone: 5, progressTotal: 4 }),
    ],
    [
      "NUL in a stage",
      "job.invalid_progress",
      () => updateJobProgress(db, { lease: ctx.lease(), stage: NUL as never }),
    ],
    [
      "NUL in a log message",
      "job.invalid_log",
      () =>
        insertJobLog(db, {
          scope: ALL_ORGANIZATIONS,
          jobId: ctx.lease().jobId,
          runNumber: 1,
          level: "info",
          message: NUL,
        }),
    ],
    [
      "lone surrogate in a log message",
      "job.invalid_log",
      () =>
        insertJobLog(db, {
          scope: ALL_ORGANIZATIONS,
          jobId: ctx.lease().jobId,
          runNumber: 1,
          level: "info",
          message: LONE,
        }),
    ],
    [
      "whitespace log message",
      "job.invalid_log",
      () =>
        insertJobLog(db, {
          scope: ALL_ORGANIZATIONS,
          jobId: ctx.lease().jobId,
          runNumber: 1,
          level: "info",
          message: " ",
        }),
    ],
    [
      "5 MB log message",
      "payload.too_large",
      () =>
        insertJobLog(db, {
          scope: ALL_ORGANIZATIONS,
          jobId: ctx.lease().jobId,
          runNumber: 1,
          level: "info",
          message: FIVE_MB.blob,
        }),
    ],
    [
      "log payload nested 10,000 deep",
      "payload.too_deep",
      () =>
        insertJobLog(db, {
          scope: ALL_ORGANIZATIONS,
          jobId: ctx.lease().jobId,
          runNumber: 1,
          level: "info",
          message: "m",
          payload: nested(10_000) as never,
        }),
    ],
    [
      "failure of an unknown kind",
      "job.invalid_failure_report",
      () => completeJobFailure(db, { lease: ctx.lease(), kind: SQLI as never, code: "c", message: "m" }),
    ],
    [
      "failure with retry delay NaN",
      "job.invalid_retry_delay",
      () =>
        completeJobFailure(db, {
          lease: ctx.lease(),
          kind: "RETRYABLE",
          code: "c",
          message: "m",
          retryDelayMs: Number.NaN,
        }),
    ],
  ];

  const ALL = ALL_ORGANIZATIONS;
  const retry = (overrides: Partial<RetryWorkflowRunInput> = {}) =>
    retryWorkflowRun(db, { workflowRunId: ctx.runId(), scope: ALL, ...overrides });
  const STEP = "00000000-0000-7000-8000-000000000002";
  const updatePayload = (payload: unknown, scope: unknown = ALL) =>
    updateWorkflowStepAndPendingJobPayload(db, {
      scope: scope as typeof ALL,
      workflowRunId: ctx.runId(),
      stepId: STEP,
      jobId: STEP,
      payload,
    });
  const operationCases: Case[] = [
    ["5 MB retry mutation metadata", "payload.too_large", () => retry({ mutationMetadata: FIVE_MB })],
    ["NUL in a retry reason", "workflow.retry_invalid_request", () => retry({ reason: NUL })],
    ["5 MB retry reason", "payload.too_large", () => retry({ reason: FIVE_MB.blob })],
    ["retry mutation key over 512 bytes", "identifier.too_long", () => retry({ mutationKey: TOO_LONG })],
    ["lone surrogate in a retry mutation key", "workflow.retry_invalid_request", () => retry({ mutationKey: LONE })],
    ["NUL in a retried step key", "workflow.retry_invalid_request", () => retry({ stepKeys: [NUL] })],
    [
      "1,001 retried step keys",
      "workflow.retry_invalid_request",
      () => retry({ stepKeys: Array.from({ length: MAX_WORKFLOW_STEPS + 1 }, (_, i) => `s${i}`) }),
    ],
    ["retry without a scope", "scope.required", () => retry({ scope: undefined as never })],
    ["retry of a live run", "workflow.retry_run_live", () => retry()],
    ["SQL-looking run id to retry", "workflow.run_not_found", () => retry({ workflowRunId: SQLI })],
    ["5 MB step payload update", "payload.too_large", () => updatePayload(FIVE_MB)],
    ["NUL in a step payload update", "job.invalid_payload", () => updatePayload({ [NUL]: 1 })],
    ["step payload update nested 10,000 deep", "payload.too_deep", () => updatePayload(nested(10_000))],
    ["step payload update with a forged scope", "scope.required", () => updatePayload({}, { organizationId: 1 })],
    [
      "definition type over 512 bytes, inserted if missing",
      "identifier.too_long",
      () => insertJobDefinitionIfMissing(db, { jobType: TOO_LONG }),
    ],
    [
      "NUL in a definition type, inserted if missing",
      "identifier.job_type_blank",
      () => insertJobDefinitionIfMissing(db, { jobType: NUL }),
    ],
    [
      "definition timeout 2,147,484 s, inserted if missing",
      "job_definition.invalid_value",
      () => insertJobDefinitionIfMissing(db, { jobType: "hostile.new", defaultTimeoutSeconds: 2_147_484 }),
    ],
    [
      "definition with 0 attempts, inserted if missing",
      "job_definition.invalid_value",
      () => insertJobDefinitionIfMissing(db, { jobType: "hostile.new", maxAttempts: 0 }),
    ],
  ];

  const JOB = "00000000-0000-7000-8000-000000000001";
  const readCases: Case[] = [
    ["page size NaN", "job.invalid_pagination", () => listJobs(db, { scope: ALL_ORGANIZATIONS, limit: Number.NaN })],
    ["page size 0", "job.invalid_pagination", () => listJobs(db, { scope: ALL_ORGANIZATIONS, limit: 0 })],
    ["page size 10^9", "job.invalid_pagination", () => listWorkflowRuns(db, { scope: ALL_ORGANIZATIONS, limit: 1e9 })],
    [
      "page size as a string",
      "job.invalid_pagination",
      () => listJobSchedules(db, { scope: ALL_ORGANIZATIONS, limit: "10; --" as never }),
    ],
    [
      "SQL-looking status filter",
      "job.invalid_pagination",
      () => listJobs(db, { scope: ALL_ORGANIZATIONS, limit: 10, status: SQLI as never }),
    ],
    [
      "SQL-looking run status filter",
      "job.invalid_pagination",
      () => listWorkflowRuns(db, { scope: ALL_ORGANIZATIONS, limit: 10, status: SQLI as never }),
    ],
    [
      "cursor with an invalid date",
      "job.invalid_pagination",
      () => listJobs(db, { scope: ALL_ORGANIZATIONS, limit: 10, after: { createdAt: new Date(Number.NaN), id: JOB } }),
    ],
    [
      "cursor with a SQL-looking id",
      "job.invalid_pagination",
      () => listJobs(db, { scope: ALL_ORGANIZATIONS, limit: 10, after: { createdAt: T0, id: SQLI } }),
    ],
    [
      "run cursor with a SQL-looking id",
      "job.invalid_pagination",
      () => listWorkflowRuns(db, { scope: ALL_ORGANIZATIONS, limit: 10, after: { createdAt: T0, id: SQLI } }),
    ],
    [
      "NUL in a job type filter",
      "job.invalid_pagination",
      () => listJobs(db, { scope: ALL_ORGANIZATIONS, limit: 10, jobTypeContains: NUL }),
    ],
    [
      "lone surrogate in a workflow type filter",
      "job.invalid_pagination",
      () => listWorkflowRuns(db, { scope: ALL_ORGANIZATIONS, limit: 10, workflowTypeContains: LONE }),
    ],
    [
      "event cursor NaN",
      "job.invalid_pagination",
      () => listJobEvents(db, { scope: ALL_ORGANIZATIONS, jobId: JOB, limit: 10, after: Number.NaN }),
    ],
    [
      "event cursor 1.5",
      "job.invalid_pagination",
      () => listJobEvents(db, { scope: ALL_ORGANIZATIONS, jobId: JOB, limit: 10, after: 1.5 }),
    ],
    [
      "log cursor -1",
      "job.invalid_pagination",
      () => listJobLogs(db, { scope: ALL_ORGANIZATIONS, jobId: JOB, limit: 10, after: -1 }),
    ],
    [
      "NUL in a schedule cursor",
      "job.invalid_pagination",
      () => listJobSchedules(db, { scope: ALL_ORGANIZATIONS, limit: 10, after: NUL }),
    ],
    [
      "SQL-looking organization in metrics",
      "job.invalid_pagination",
      () => getJobMetrics(db, { scope: { organizationId: SQLI } }),
    ],
  ];

  const log = (overrides: Partial<Parameters<typeof insertJobLog>[1]>) =>
    insertJobLog(db, {
      scope: ALL_ORGANIZATIONS,
      jobId: ctx.lease().jobId,
      runNumber: 1,
      level: "info",
      message: "m",
      ...overrides,
    });
  const failure = (overrides: Partial<Parameters<typeof completeJobFailure>[1]>) =>
    completeJobFailure(db, { lease: ctx.lease(), kind: "TERMINAL", code: "c", message: "m", ...overrides });
  const claim = (overrides: Partial<Parameters<typeof claimJobs>[1]>) =>
    claimJobs(db, { workerId: "w-other", leaseSeconds: 60, limit: 1, jobTypes: ["hostile.none"], ...overrides });
  const external = (overrides: Partial<Parameters<typeof completeExternalWorkflowStep>[1]>) =>
    completeExternalWorkflowStep(db, {
      scope: ALL_ORGANIZATIONS,
      workflowRunId: ctx.runId(),
      stepKey: "window",
      terminalStatus: "FAILED",
      ...overrides,
    });
  const fieldCases: Case[] = [
    // A worker's own writes: its id, its failure codes, its stages and log levels.
    ...textCases("claim worker id", "job.invalid_worker_id", (workerId) => claim({ workerId })),
    ["claim worker id of 2 MB", "identifier.too_long", () => claim({ workerId: "w".repeat(2 * 1024 * 1024) })],
    ...numberCases("claim lease seconds", "job.invalid_lease_duration", (leaseSeconds) => claim({ leaseSeconds })),
    ["claim lease seconds 0", "job.invalid_lease_duration", () => claim({ leaseSeconds: 0 })],
    ...numberCases("claim limit", "job.invalid_pagination", (limit) => claim({ limit })),
    ...textCases("claim job type", "identifier.job_type_blank", (jobType) =>
      claim({ jobTypes: ["hostile.ok", jobType] }),
    ),
    ...textCases(
      "lease worker id (heartbeat)",
      "job.lease_owner_mismatch",
      (workerId) => heartbeatJob(db, { lease: { ...ctx.lease(), workerId }, leaseSeconds: 60 }),
      { long: "job.lease_owner_mismatch" },
    ),
    ...numberCases("heartbeat lease seconds", "job.invalid_lease_duration", (leaseSeconds) =>
      heartbeatJob(db, { lease: ctx.lease(), leaseSeconds }),
    ),
    ...numberCases("lease run number", "job.lease_owner_mismatch", (runNumber) =>
      heartbeatJob(db, { lease: { ...ctx.lease(), runNumber }, leaseSeconds: 60 }),
    ),
    ...textCases("failure code", "job.invalid_failure_report", (code) => failure({ code })),
    ["failure message that is not text", "job.invalid_failure_report", () => failure({ message: 42 as never })],
    ["failure retry delay -1", "job.invalid_retry_delay", () => failure({ kind: "RETRYABLE", retryDelayMs: -1 })],
    ["failure retry delay 1e20", "job.invalid_retry_delay", () => failure({ kind: "RETRYABLE", retryDelayMs: 1e20 })],
    ...textCases("progress stage", "job.invalid_progress", (stage) =>
      updateJobProgress(db, { lease: ctx.lease(), stage }),
    ),
    ...numberCases(
      "progress done",
      "job.invalid_progress",
      (progressDone) => updateJobProgress(db, { lease: ctx.lease(), progressDone }),
      2 ** 63,
    ),
    ...numberCases(
      "progress total",
      "job.invalid_progress",
      (progressTotal) => updateJobProgress(db, { lease: ctx.lease(), progressTotal }),
      2 ** 63,
    ),
    ...textCases("log level", "job.invalid_log", (level) => log({ level })),
    ...numberCases("log run number", "job.invalid_log", (runNumber) => log({ runNumber })),
    ["log run number NaN", "job.invalid_log", () => log({ runNumber: Number.NaN })],
    ...numberCases("log attempt", "job.invalid_log", (attempt) => log({ attempt })),
    ...textCases(
      "release reason",
      "job.invalid_failure_report",
      (reason) => releaseUnstartedJobClaim(db, { lease: ctx.lease(), reason }),
      { long: "payload.too_large", longValue: FIVE_MB.blob },
    ),
    // Definitions: the job type and every number, through each write that takes them.
    ...textCases("definition job type (upsert)", "identifier.job_type_blank", (jobType) =>
      upsertJobDefinition(db, { jobType }),
    ),
    ...textCases("definition job type (update)", "identifier.job_type_blank", (jobType) =>
      updateJobDefinition(db, jobType, { maxAttempts: 2 }),
    ),
    ...numberCases("definition max attempts", "job_definition.invalid_value", (maxAttempts) =>
      upsertJobDefinition(db, { jobType: "hostile.new", maxAttempts }),
    ),
    ...numberCases("definition priority", "job_definition.invalid_value", (defaultPriority) =>
      updateJobDefinition(db, "hostile.ok", { defaultPriority: defaultPriority === -1 ? 1.25 : defaultPriority }),
    ),
    ...numberCases(
      "definition timeout",
      "job_definition.invalid_value",
      (defaultTimeoutSeconds) => updateJobDefinition(db, "hostile.ok", { defaultTimeoutSeconds }),
      2_147_484,
    ),
    [
      "definition version 0",
      "job_definition.invalid_value",
      () => upsertJobDefinition(db, { jobType: "hostile.new", version: 0 }),
    ],
    [
      "definition enabled flag as a string",
      "job_definition.invalid_value",
      () => updateJobDefinition(db, "hostile.ok", { isEnabled: "false" as never }),
    ],
    // The guards between schedules and definitions (the active schedule "nightly" runs hostile.ok).
    [
      "disabling a type an active schedule uses (update)",
      "job_definition.active_schedule_exists",
      () => updateJobDefinition(db, "hostile.ok", { isEnabled: false }),
    ],
    [
      "disabling a type an active schedule uses (upsert)",
      "job_definition.active_schedule_exists",
      () => upsertJobDefinition(db, { jobType: "hostile.ok", isEnabled: false }),
    ],
    [
      "schedule of an unknown job type",
      "job_schedule.definition_not_found_or_disabled",
      () =>
        upsertJobSchedule(db, {
          name: "hostile-new",
          jobType: "hostile.nope",
          cronExpr: "0 0 * * * *",
          nextFireAt: T0,
        }),
    ],
    [
      "active schedule of a disabled job type",
      "job_schedule.definition_not_found_or_disabled",
      () =>
        upsertJobSchedule(db, {
          name: "hostile-new",
          jobType: "hostile.disabled",
          cronExpr: "0 0 * * * *",
          nextFireAt: T0,
        }),
    ],
    [
      "resuming a schedule of a disabled job type",
      "job_schedule.definition_not_found_or_disabled",
      () => setJobScheduleActive(db, "paused-disabled", true, ALL_ORGANIZATIONS),
    ],
    ...textCases("runtime config job type", "identifier.job_type_blank", (jobType) =>
      upsertJobRuntimeConfig(db, { jobType, schemaVersion: 1, config: {} }),
    ),
    ...numberCases("runtime config schema version", "job.invalid_runtime_config", (schemaVersion) =>
      upsertJobRuntimeConfig(db, { jobType: "hostile.ok", schemaVersion, config: {} }),
    ),
    ...textCases("flow limit job type", "identifier.job_type_blank", (jobType) =>
      setJobTypeLimits(db, { jobType, maxConcurrency: 1 }),
    ),
    ...numberCases("flow max concurrency", "flow.invalid_limit", (maxConcurrency) =>
      setJobTypeLimits(db, { jobType: "hostile.ok", maxConcurrency }),
    ),
    ...textCases("key limit pattern", "flow.invalid_limit", (pattern) =>
      setKeyLimit(db, { pattern, maxConcurrency: 1 }),
    ),
    // Enqueue fields not covered above.
    ...textCases("concurrency key", "job.invalid_enqueue_request", (concurrencyKey) =>
      enqueueJob(db, { ...ok, concurrencyKey }),
    ),
    ["timeout -1", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, timeoutSeconds: -1 })],
    ["timeout 1.5", "job.invalid_enqueue_request", () => enqueueJob(db, { ...ok, timeoutSeconds: 1.5 })],
    [
      "blank workflow type",
      "workflow.invalid_dag_workflow_type_blank",
      () => enqueueWorkflowRun(db, run([step("a")], { workflowType: " \t" })),
    ],
    ["blank append window key", "workflow.append_window_missing", () => append({ appendWindowStepKey: " " })],
    ["append window key of 300 KB", "identifier.too_long", () => append({ appendWindowStepKey: HUGE_LABEL })],
    ["lone surrogate in the mutation key", "workflow.append_mutation_key_blank", () => append({ mutationKey: LONE })],
    ...textCases("external step error code", "workflow.external_step_invalid_terminal_status", (lastErrorCode) =>
      external({ lastErrorCode }),
    ),
    ["5 MB external step reason", "payload.too_large", () => external({ statusReason: FIVE_MB.blob })],
    [
      "lone surrogate in a job cancel reason",
      "job.invalid_state_transition",
      () => cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: ctx.lease().jobId, reason: LONE }),
    ],
    [
      "NUL in a workflow cancel reason",
      "workflow.run_not_found",
      () => cancelWorkflowRun(db, { scope: ALL_ORGANIZATIONS, workflowRunId: ctx.runId(), reason: NUL }),
    ],
  ];

  return [
    ["job enqueue", jobCases],
    ["catalog enqueue", catalogCases],
    ["workflow enqueue", workflowCases],
    ["workflow append and external completion", appendCases],
    ["schedules", scheduleCases],
    ["cancel reasons and external completion text", reasonCases],
    ["a running job's checkpoint, logs and failure", runningJobCases],
    ["workflow retry, step payload updates, definitions", operationCases],
    ["reads: page sizes, cursors and filters", readCases],
    [
      "each field of each write: text (blank, NUL, lone surrogate, 300 KB) and numbers (negative, fractional, overflow)",
      fieldCases,
    ],
  ];
}
