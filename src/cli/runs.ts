import { MAX_WORKFLOW_STEPS, WORKFLOW_RUN_STATUSES, type WorkflowRunStatus } from "../core/index.ts";
import {
  cancelWorkflowRun,
  completeExternalWorkflowStep,
  getWorkflowRunById,
  listWorkflowRuns,
  listWorkflowStepDependencies,
  listWorkflowSteps,
  retryWorkflowRun,
  type WorkflowStepDependencyCursor,
  type WorkflowStepDependencyRecord,
} from "../store/index.ts";
import {
  COMMON_OPTIONS,
  type Command,
  choiceArg,
  cursorArg,
  cursorText,
  intArg,
  ORG_OPTION,
  printPage,
  uuidArg,
} from "./command.ts";
import { asciiDag } from "./dag.ts";
import { duration, json, table, time, UsageError } from "./output.ts";

export const runsListCommand: Command = {
  name: "runs list",
  summary: "list workflow runs, newest first",
  usage: `usage: runledger runs list [--status S] [--type TEXT] [--limit N] [--after CURSOR] [--org ID] [--json]

Workflow runs newest first, a page at a time (pass the printed cursor as --after).
  --status S    RUNNING, WAITING_FOR_EXTERNAL, SUCCEEDED, COMPLETED_WITH_ERRORS or CANCELED
  --type TEXT   workflow type contains TEXT (case-insensitive)
  --limit N     rows per page, default 50, at most 1000

--json: {"items":[{"id","workflowType","organizationId","status","idempotencyKey","metadata",
"startedAt","finishedAt","createdAt","updatedAt"}],"next":CURSOR|null}
`,
  options: {
    status: { type: "string" },
    type: { type: "string" },
    limit: { type: "string" },
    after: { type: "string" },
    ...COMMON_OPTIONS,
    ...ORG_OPTION,
  },
  async run(ctx) {
    const v = ctx.values as Record<string, string | undefined>;
    const after = cursorArg(v.after);
    const page = await listWorkflowRuns(ctx.db(), {
      scope: ctx.scope,
      status:
        v.status === undefined ? undefined : choiceArg<WorkflowRunStatus>(v.status, "status", WORKFLOW_RUN_STATUSES),
      workflowTypeContains: v.type,
      limit: intArg(v.limit, "limit", 50, 1000),
      after: after === undefined ? undefined : { createdAt: after.at, id: after.id },
    });
    return printPage(
      ctx,
      { items: page.items, next: page.next === null ? null : cursorText(page.next.createdAt, page.next.id) },
      "no runs match",
      (rows) => {
        table(
          ctx.out,
          ["id", "type", "status", "took"],
          rows.map((r) => [
            r.id,
            r.workflowType,
            r.status,
            r.finishedAt === null ? "-" : duration(r.finishedAt.getTime() - r.startedAt.getTime()),
          ]),
        );
      },
    );
  },
};

export const runsShowCommand: Command = {
  name: "runs show",
  summary: "one run: its steps with statuses and the DAG",
  usage: `usage: runledger runs show RUN_ID [--org ID] [--json]

The run, its steps (status, job, error) and its DAG drawn as a tree (a step with several
prerequisites appears once in full and as "↑ key" under the others). Exit 1 when no run of
that id is visible.

--json: {"run":run record,"steps":[{"id","stepKey","executionKind","jobType","status","jobId",
"startedAt","finishedAt","statusReason","lastErrorCode","lastErrorMessage",…}],
"edges":[{"prerequisiteStepKey","dependentStepKey","releaseMode"}]}
`,
  options: { ...COMMON_OPTIONS, ...ORG_OPTION },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const runId = uuidArg(ctx.positionals[0]!, "run id");
    const db = ctx.db();
    const run = await getWorkflowRunById(db, runId, ctx.scope);
    if (run === null) {
      ctx.out.error(`runledger runs show: no run ${runId}\n`);
      return 1;
    }
    // A run holds at most MAX_WORKFLOW_STEPS steps: one page.
    const steps = (await listWorkflowSteps(db, { workflowRunId: runId, scope: ctx.scope, limit: MAX_WORKFLOW_STEPS }))
      .items;
    const edges: WorkflowStepDependencyRecord[] = [];
    for (let after: WorkflowStepDependencyCursor | undefined, more = true; more; ) {
      const page = await listWorkflowStepDependencies(db, {
        workflowRunId: runId,
        scope: ctx.scope,
        limit: 1000,
        after,
      });
      edges.push(...page.items);
      after = page.next ?? undefined;
      more = page.next !== null;
    }
    if (ctx.json) {
      json(ctx.out, {
        run,
        steps,
        edges: edges.map((e) => ({
          prerequisiteStepKey: e.prerequisiteStepKey,
          dependentStepKey: e.dependentStepKey,
          releaseMode: e.releaseMode,
        })),
      });
      return 0;
    }
    const out = ctx.out;
    out.write(`run          ${run.id}\ntype         ${run.workflowType}\nstatus       ${run.status}\n`);
    if (run.organizationId !== null) out.write(`organization ${run.organizationId}\n`);
    out.write(`started      ${time(run.startedAt)}\n`);
    if (run.finishedAt !== null) out.write(`finished     ${time(run.finishedAt)}\n`);
    out.write("\n");
    // The job ids in full (to copy into `jobs show`); the DAG below says which step is a gate.
    const errors = steps.some((s) => s.lastErrorCode !== null);
    table(
      out,
      ["step", "status", "job", ...(errors ? ["error"] : [])],
      steps.map((s) => [s.stepKey, s.status, s.jobId ?? "", ...(errors ? [s.lastErrorCode ?? ""] : [])]),
    );
    out.write("\n");
    for (const line of asciiDag(steps, edges)) out.write(`${line}\n`);
    return 0;
  },
};

export const runsCancelCommand: Command = {
  name: "runs cancel",
  summary: "cancel a run: its pending and running steps and their jobs",
  usage: `usage: runledger runs cancel RUN_ID [--reason TEXT] [--org ID] [--json]

Cancels every pending or running step and its job (running handlers are told at once), closes
open gates and marks the run CANCELED. A run that already finished is left as it is (exit 0,
its status printed). Exit 1 when no run of that id is visible.

--json: {"run":run record}
`,
  options: { reason: { type: "string" }, ...COMMON_OPTIONS, ...ORG_OPTION },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const workflowRunId = uuidArg(ctx.positionals[0]!, "run id");
    const run = await cancelWorkflowRun(ctx.db(), {
      workflowRunId,
      scope: ctx.scope,
      reason: (ctx.values.reason as string | undefined) ?? "canceled with runledger runs cancel",
    });
    if (ctx.json) json(ctx.out, { run });
    else ctx.out.write(`run ${run.id} ${run.status}\n`);
    return 0;
  },
};

export const runsRetryCommand: Command = {
  name: "runs retry",
  summary: "run a finished run's failed job steps again",
  usage: `usage: runledger runs retry RUN_ID [--step KEY]… [--reset-checkpoints] [--reason TEXT] [--org ID] [--json]

Requeues the failed job steps of a finished run (all of them, or the --step keys), reopens the
steps their failure canceled, and the run is RUNNING again. Refused (exit 1, nothing changed):
a live run, a canceled run, a run without failed job steps.
  --reset-checkpoints   start the retried jobs afresh (default: they resume from their checkpoint)

--json: {"outcome":"RETRIED"|"ALREADY_APPLIED","run":run record,"retriedSteps":[KEY],"reopenedSteps":[KEY]}
`,
  options: {
    step: { type: "string", multiple: true },
    "reset-checkpoints": { type: "boolean" },
    reason: { type: "string" },
    ...COMMON_OPTIONS,
    ...ORG_OPTION,
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const workflowRunId = uuidArg(ctx.positionals[0]!, "run id");
    const result = await retryWorkflowRun(ctx.db(), {
      workflowRunId,
      scope: ctx.scope,
      stepKeys: ctx.values.step as string[] | undefined,
      reason: ctx.values.reason as string | undefined,
      resetCheckpoints: ctx.values["reset-checkpoints"] === true,
    });
    const retried = result.retriedSteps.map((s) => s.stepKey);
    const reopened = result.reopenedSteps.map((s) => s.stepKey);
    if (ctx.json) {
      json(ctx.out, {
        outcome: result.outcome,
        run: result.workflowRun,
        retriedSteps: retried,
        reopenedSteps: reopened,
      });
    } else {
      ctx.out.write(`run ${result.workflowRun.id} ${result.workflowRun.status}: retried ${retried.join(", ") || "-"}`);
      ctx.out.write(reopened.length === 0 ? "\n" : `; reopened ${reopened.join(", ")}\n`);
    }
    return 0;
  },
};

/** `gates approve|reject RUN STEP --reason`. */
function gate(verb: "approve" | "reject"): Command {
  return {
    name: `gates ${verb}`,
    summary: verb === "approve" ? "approve an external gate (it succeeds)" : "reject an external gate (it fails)",
    usage: `usage: runledger gates ${verb} RUN_ID STEP_KEY --reason TEXT [--org ID] [--json]

Closes the gate (a step waiting for an external decision) as ${verb === "approve" ? "SUCCEEDED" : "FAILED"}, recording
--reason (required, for the audit trail); its dependents are then released or canceled.
Doing it again is a no-op; the opposite decision afterwards is refused (exit 1).

--json: {"step":step record}
`,
    options: { reason: { type: "string" }, ...COMMON_OPTIONS, ...ORG_OPTION },
    positionals: { min: 2, max: 2 },
    async run(ctx) {
      const workflowRunId = uuidArg(ctx.positionals[0]!, "run id");
      const reason = ctx.values.reason as string | undefined;
      if (reason === undefined || reason.trim() === "")
        throw new UsageError(`runledger gates ${verb}: --reason is required`);
      const step = await completeExternalWorkflowStep(ctx.db(), {
        workflowRunId,
        scope: ctx.scope,
        stepKey: ctx.positionals[1]!,
        terminalStatus: verb === "approve" ? "SUCCEEDED" : "FAILED",
        statusReason: reason,
      });
      if (ctx.json) json(ctx.out, { step });
      else ctx.out.write(`gate ${step.stepKey} of run ${workflowRunId} ${step.status}\n`);
      return 0;
    },
  };
}

export const gatesApproveCommand = gate("approve");
export const gatesRejectCommand = gate("reject");
