import {
  COUNTED_JOB_STATUSES,
  countJobsByStatus,
  countWorkflowRuns,
  getOldestDueJob,
  inspectSchema,
  listRecentWorkers,
} from "../store/index.ts";
import { COMMON_OPTIONS, type Command, ORG_OPTION } from "./command.ts";
import { ago, capped, duration, json, num, table } from "./output.ts";

/** `runledger status`: the system at a glance, in 80 columns. */
export const statusCommand: Command = {
  name: "status",
  summary: "jobs by type and status, oldest pending, workers, schema state",
  usage: `usage: runledger status [--org ID] [--json] [--database-url URL]

Jobs pending, running (leased) and dead-lettered, in total and per job type; workflow runs
running; how long the oldest due job has waited; workers seen recently; the schema state.
Counts read at most 10,000 rows per group (then shown as 10,000+), so status stays fast on
large tables.

--json: {"scope","schema":{"state","bundled","applied","pending"},
         "jobs":{"pending","leased","deadLettered"} (each {"count","capped"}),
         "byType":[{"jobType","pending","leased","deadLettered","capped"}],
         "runsRunning","oldestPending":{"jobId","jobType","waitingMs"}|null,
         "workers":[{"workerId","leased","lastClaimAt","lastHeartbeatAt","recentAttempts"}]}
`,
  options: { ...COMMON_OPTIONS, ...ORG_OPTION },
  async run(ctx) {
    const db = ctx.db();
    const scope = ctx.scope;
    const schema = await inspectSchema(db);
    const counts = await countJobsByStatus(db, { scope });
    const oldest = await getOldestDueJob(db, { scope });
    const workers = await listRecentWorkers(db, { scope, limit: 10 });
    const runsRunning = await countWorkflowRuns(db, { scope, status: "RUNNING" });
    const byType = new Map<string, { pending: number; leased: number; deadLettered: number; capped: boolean }>();
    for (const row of counts.byType) {
      const entry = byType.get(row.jobType) ?? { pending: 0, leased: 0, deadLettered: 0, capped: false };
      const key = { PENDING: "pending", LEASED: "leased", DEAD_LETTERED: "deadLettered" } as const;
      entry[key[row.status]] += row.count;
      entry.capped ||= row.capped;
      byType.set(row.jobType, entry);
    }
    const schemaCounts = {
      state: schema.state,
      bundled: schema.bundled,
      applied: schema.applied,
      pending: schema.pending,
    };
    if (ctx.json) {
      json(ctx.out, {
        scope: "organizationId" in scope ? { organizationId: scope.organizationId } : "all",
        schema: schemaCounts,
        jobs: {
          pending: counts.byStatus.PENDING,
          leased: counts.byStatus.LEASED,
          deadLettered: counts.byStatus.DEAD_LETTERED,
        },
        byType: [...byType].map(([jobType, c]) => ({ jobType, ...c })),
        runsRunning,
        oldestPending:
          oldest === null
            ? null
            : { jobId: oldest.jobId, jobType: oldest.jobType, waitingMs: Math.round(oldest.waitingMs) },
        workers,
      });
      return 0;
    }
    const who = "organizationId" in scope ? `organization ${scope.organizationId}` : "all organizations";
    const out = ctx.out;
    out.write(`runledger status: ${who}\n`);
    out.write(`schema ${schema.state} (${schema.applied}/${schema.bundled} migrations)\n\n`);
    const [p, l, d] = COUNTED_JOB_STATUSES.map((s) => capped(counts.byStatus[s]));
    const rows = [...byType].map(([jobType, c]) => {
      const plus = c.capped ? "+" : "";
      return [jobType, `${num(c.pending)}${plus}`, `${num(c.leased)}${plus}`, `${num(c.deadLettered)}${plus}`];
    });
    rows.push(["total", p!, l!, d!]);
    table(out, ["job type", "pending", "running", "dead"], rows, ["left", "right", "right", "right"]);
    out.write(`\nworkflow runs running: ${num(runsRunning)}\n`);
    out.write(
      oldest === null
        ? "oldest due job: none waiting\n"
        : `oldest due job: waiting ${duration(oldest.waitingMs)} (${oldest.jobType} ${oldest.jobId})\n`,
    );
    if (workers.length === 0) {
      out.write("workers: none seen recently\n");
      return 0;
    }
    out.write("\n");
    table(
      out,
      ["worker", "running", "last claim", "last heartbeat"],
      workers.map((w) => [w.workerId, num(w.leased), ago(w.lastClaimAt), ago(w.lastHeartbeatAt)]),
      ["left", "right", "left", "left"],
    );
    return 0;
  },
};
