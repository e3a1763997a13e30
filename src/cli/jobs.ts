import { JOB_STATUSES, type JobStatus } from "../core/index.ts";
import {
  cancelJob,
  getJobById,
  type JobRecord,
  listJobAttempts,
  listJobEvents,
  listJobLogs,
  listJobs,
  requeueJob,
} from "../store/index.ts";
import { BULK_OPTIONS, BULK_USAGE, bulkFilter, isBulk, runBulk } from "./bulk.ts";
import {
  COMMON_OPTIONS,
  type Command,
  type CommandContext,
  choiceArg,
  cursorArg,
  cursorText,
  intArg,
  ORG_OPTION,
  printPage,
  timeArg,
  uuidArg,
} from "./command.ts";
import { age, describeError, json, shortTime, table, time, UsageError } from "./output.ts";

/** Log lines `jobs show` prints (the last ones). */
const SHOWN_LOG_LINES = 20;
const DETAIL_ROWS = 1000;

const progressOf = (job: JobRecord) =>
  job.progressTotal === null
    ? job.progressDone === null
      ? ""
      : String(job.progressDone)
    : `${job.progressDone ?? 0}/${job.progressTotal}`;

export const jobsListCommand: Command = {
  name: "jobs list",
  summary: "list jobs, newest first (status, type, organization and time filters)",
  usage: `usage: runledger jobs list [--status S] [--type TEXT] [--created-after T] [--created-before T]
                         [--limit N] [--after CURSOR] [--org ID] [--json]

Jobs newest first, a page at a time (keyset: pass the printed cursor as --after).
  --status S       PENDING, LEASED, SUCCEEDED, DEAD_LETTERED or CANCELED
  --type TEXT      job type contains TEXT (case-insensitive)
  --created-after T, --created-before T   ISO time, or an age (30m, 2h, 7d)
  --limit N        rows per page, default 50, at most 1000

--json: {"items":[job record],"next":CURSOR|null}; a job record has id, jobType,
organizationId, status, stage, runNumber, attempt, maxAttempts, progressDone, progressTotal,
lastErrorCode, lastErrorMessage, workflowStepId, createdAt, finishedAt, … (ISO times).
`,
  options: {
    status: { type: "string" },
    type: { type: "string" },
    "created-after": { type: "string" },
    "created-before": { type: "string" },
    limit: { type: "string" },
    after: { type: "string" },
    ...COMMON_OPTIONS,
    ...ORG_OPTION,
  },
  async run(ctx) {
    const v = ctx.values as Record<string, string | undefined>;
    const after = cursorArg(v.after);
    const page = await listJobs(ctx.db(), {
      scope: ctx.scope,
      status: v.status === undefined ? undefined : choiceArg<JobStatus>(v.status, "status", JOB_STATUSES),
      jobTypeContains: v.type,
      createdAfter: timeArg(v["created-after"], "created-after"),
      createdBefore: timeArg(v["created-before"], "created-before"),
      limit: intArg(v.limit, "limit", 50, 1000),
      after: after === undefined ? undefined : { createdAt: after.at, id: after.id },
    });
    return printPage(
      ctx,
      { items: page.items, next: page.next === null ? null : cursorText(page.next.createdAt, page.next.id) },
      "no jobs match",
      (rows) => {
        // Progress only when a job reports it: the table keeps to 80 columns with full ids.
        const progress = rows.some((j) => j.progressTotal !== null);
        table(
          ctx.out,
          ["id", "type", "status", "att", ...(progress ? ["progress"] : []), "age"],
          rows.map((j) => [
            j.id,
            j.jobType,
            j.status,
            `${j.attempt}/${j.maxAttempts}`,
            ...(progress ? [progressOf(j)] : []),
            age(j.createdAt),
          ]),
          ["left", "left", "left", "right", "right", "right"],
        );
      },
    );
  },
};

export const jobsShowCommand: Command = {
  name: "jobs show",
  summary: "one job: record, attempts, events, last log lines, progress",
  usage: `usage: runledger jobs show JOB_ID [--org ID] [--json]

The job's record, its attempts, its events and its last ${SHOWN_LOG_LINES} log lines.
Exit 1 when no job of that id is visible (in --org's organization).

--json: {"job":job record,"attempts":[{"runNumber","attempt","workerId","startedAt","finishedAt",
"outcome","errorCode","errorMessage",…}],"events":[{"id","runNumber","attempt","eventType","stage",
"payload","occurredAt",…}],"logs":[{"id","runNumber","attempt","level","message","payload","occurredAt"}]}
`,
  options: { ...COMMON_OPTIONS, ...ORG_OPTION },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const jobId = uuidArg(ctx.positionals[0]!, "job id");
    const db = ctx.db();
    const job = await getJobById(db, jobId, ctx.scope);
    if (job === null) {
      ctx.out.error(`runledger jobs show: no job ${jobId}\n`);
      return 1;
    }
    const attempts = (await listJobAttempts(db, { jobId, scope: ctx.scope, limit: DETAIL_ROWS })).items;
    const events = (await listJobEvents(db, { jobId, scope: ctx.scope, limit: DETAIL_ROWS })).items;
    const logs = (await listJobLogs(db, { jobId, scope: ctx.scope, limit: DETAIL_ROWS })).items.slice(-SHOWN_LOG_LINES);
    if (ctx.json) {
      json(ctx.out, { job, attempts, events, logs });
      return 0;
    }
    const out = ctx.out;
    const field = (name: string, value: string | number | null) =>
      value === null || value === "" ? undefined : `${name.padEnd(12)} ${value}\n`;
    const fields = [
      field("job", job.id),
      field("type", job.jobType),
      field("organization", job.organizationId),
      field("status", `${job.status}${job.statusReason === null ? "" : ` (${job.statusReason})`}`),
      field("stage", job.stage),
      field("progress", progressOf(job)),
      field("run", `${job.runNumber}, attempt ${job.attempt} of ${job.maxAttempts}`),
      field("worker", job.workerId),
      field("error", job.lastErrorCode === null ? null : `${job.lastErrorCode}: ${job.lastErrorMessage ?? ""}`),
      field("workflow step", job.workflowStepId),
      field("created", time(job.createdAt)),
      field("next run", job.finishedAt === null ? time(job.nextRunAt) : null),
      field("finished", job.finishedAt === null ? null : time(job.finishedAt)),
      field("payload", JSON.stringify(job.payload)),
    ];
    out.write(fields.filter((f) => f !== undefined).join(""));
    out.write(`\nattempts (${attempts.length})\n`);
    if (attempts.length > 0) {
      table(
        out,
        ["run", "att", "worker", "started", "finished", "outcome"],
        attempts.map((a) => [
          String(a.runNumber),
          String(a.attempt),
          a.workerId,
          shortTime(a.startedAt),
          shortTime(a.finishedAt),
          a.outcome === null ? (a.finishedAt === null ? "running" : "-") : `${a.outcome} ${a.errorCode ?? ""}`.trim(),
        ]),
      );
    }
    out.write(`\nevents (${events.length})\n`);
    if (events.length > 0) {
      table(
        out,
        ["at", "event", "run", "att", "detail"],
        events.map((e) => [
          shortTime(e.occurredAt),
          e.eventType,
          String(e.runNumber),
          e.attempt === null ? "" : String(e.attempt),
          Object.keys(e.payload).length === 0 ? "" : JSON.stringify(e.payload),
        ]),
      );
    }
    out.write(`\nlast log lines (${logs.length})\n`);
    for (const l of logs) out.write(`${time(l.occurredAt)} ${l.level.padEnd(5)} ${l.message}\n`);
    return 0;
  },
};

/** `jobs cancel|requeue`: by ids one at a time (the single-job rules), or by filter. */
function mutation(verb: "cancel" | "requeue"): Command {
  const past = verb === "cancel" ? "canceled" : "requeued";
  return {
    name: `jobs ${verb}`,
    summary:
      verb === "cancel"
        ? "cancel pending or running jobs, by id or by filter (--dry-run, --yes)"
        : "run finished jobs again, by id or by filter (--dry-run, --yes)",
    usage: `usage: runledger jobs ${verb} JOB_ID… [--reason TEXT] [--org ID] [--json]
       runledger jobs ${verb} FILTER… (--dry-run | --yes) [--reason TEXT] [--org ID] [--json]

${
  verb === "cancel"
    ? "Cancels PENDING or LEASED jobs (a running handler is told at once; a workflow step's job\ncancels its step too)."
    : "Requeues SUCCEEDED, DEAD_LETTERED or CANCELED jobs as a new run. A workflow step's job is\nrefused by id and passed over by filter: retry its run instead (runledger runs retry)."
}
By id: exit 1 when any id was not found or not in a status that allows it (the others still
${verb === "cancel" ? "are canceled" : "are requeued"}).
${BULK_USAGE}

--json by id: {"results":[{"jobId","ok":true,"status"}|{"jobId","ok":false,"error":{"code","message"}}]}
--json by filter: {"dryRun":true,"matched","wouldChange","capped"} | {"dryRun":false,"changed","batches"}
`,
    options: { ...BULK_OPTIONS, ...COMMON_OPTIONS, ...ORG_OPTION },
    positionals: { min: 0, max: 1000 },
    async run(ctx) {
      if (ctx.positionals.length === 0) return runBulk(ctx, verb, bulkFilter(ctx));
      if (isBulk(ctx)) throw new UsageError(`runledger jobs ${verb}: give job ids or a filter, not both`);
      return byIds(ctx, verb, past);
    },
  };
}

async function byIds(ctx: CommandContext, verb: "cancel" | "requeue", past: string): Promise<number> {
  const ids = ctx.positionals.map((id) => uuidArg(id, "job id"));
  const reason = ctx.values.reason as string | undefined;
  const db = ctx.db();
  const results: ({ jobId: string; ok: true; status: string } | { jobId: string; ok: false; error: object })[] = [];
  for (const jobId of ids) {
    try {
      const input = { jobId, scope: ctx.scope, reason };
      const job = verb === "cancel" ? await cancelJob(db, input) : await requeueJob(db, input);
      results.push({ jobId, ok: true, status: job.status });
      if (!ctx.json) ctx.out.write(`${jobId} ${past} (now ${job.status})\n`);
    } catch (error) {
      const described = describeError(error);
      results.push({ jobId, ok: false, error: described });
      if (!ctx.json) ctx.out.error(`${jobId} not ${past}: ${described.code}: ${described.message}\n`);
    }
  }
  if (ctx.json) json(ctx.out, { results });
  return results.every((r) => r.ok) ? 0 : 1;
}

export const jobsCancelCommand = mutation("cancel");
export const jobsRequeueCommand = mutation("requeue");
