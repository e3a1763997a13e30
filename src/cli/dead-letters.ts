import { listDeadLetters } from "../store/index.ts";
import { BULK_OPTIONS, BULK_USAGE, bulkFilter, runBulk } from "./bulk.ts";
import { COMMON_OPTIONS, type Command, cursorArg, cursorText, intArg, ORG_OPTION, printPage } from "./command.ts";
import { jobsRequeueCommand } from "./jobs.ts";
import { ago, table, UsageError } from "./output.ts";

export const deadLettersListCommand: Command = {
  name: "dead-letters list",
  summary: "jobs dead-lettered now, latest failure first",
  usage: `usage: runledger dead-letters list [--type TYPE] [--limit N] [--after CURSOR] [--org ID] [--json]

Jobs that are dead-lettered now (a requeued job leaves the list), latest failure first, a page
at a time (pass the printed cursor as --after).
  --type TYPE   only this job type (exact)
  --limit N     rows per page, default 50, at most 1000

--json: {"items":[{"jobId","jobType","organizationId","runNumber","attempt","errorCode",
"errorMessage","failedAt","jobCreatedAt"}],"next":CURSOR|null}
`,
  options: {
    type: { type: "string" },
    limit: { type: "string" },
    after: { type: "string" },
    ...COMMON_OPTIONS,
    ...ORG_OPTION,
  },
  async run(ctx) {
    const v = ctx.values as Record<string, string | undefined>;
    const after = cursorArg(v.after);
    const page = await listDeadLetters(ctx.db(), {
      scope: ctx.scope,
      jobType: v.type,
      limit: intArg(v.limit, "limit", 50, 1000),
      after: after === undefined ? undefined : { failedAt: after.at, jobId: after.id },
    });
    return printPage(
      ctx,
      { items: page.items, next: page.next === null ? null : cursorText(page.next.failedAt, page.next.jobId) },
      "no dead letters",
      (rows) => {
        table(
          ctx.out,
          ["job", "type", "error", "failed"],
          rows.map((d) => [d.jobId, d.jobType, d.errorCode ?? "", ago(d.failedAt)]),
        );
      },
    );
  },
};

export const deadLettersRequeueCommand: Command = {
  name: "dead-letters requeue",
  summary: "requeue dead letters, by id or by filter (--dry-run, --yes)",
  usage: `usage: runledger dead-letters requeue JOB_ID… [--reason TEXT] [--org ID] [--json]
       runledger dead-letters requeue [--type TYPE] [FILTER…] (--dry-run | --yes) [--org ID] [--json]

Runs dead-lettered jobs again as a new run (as jobs requeue, limited to DEAD_LETTERED jobs).
Workflow steps' jobs are passed over: retry their run (runledger runs retry).
${BULK_USAGE}
--finished-after/--finished-before compare the time the job was dead-lettered.

--json: as jobs requeue.
`,
  options: { ...BULK_OPTIONS, ...COMMON_OPTIONS, ...ORG_OPTION },
  positionals: { min: 0, max: 1000 },
  async run(ctx) {
    if (ctx.values.status !== undefined)
      throw new UsageError("runledger dead-letters requeue: --status is DEAD_LETTERED here");
    if (ctx.positionals.length > 0) return jobsRequeueCommand.run(ctx);
    return runBulk(ctx, "requeue", bulkFilter(ctx, { statuses: ["DEAD_LETTERED"] }));
  },
};
