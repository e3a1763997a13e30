import {
  countJobsByStatus,
  listJobDefinitions,
  listJobSchedules,
  pauseJobType,
  resumeJobType,
  setJobScheduleActive,
} from "../store/index.ts";
import { COMMON_OPTIONS, type Command, intArg, ORG_OPTION, printPage } from "./command.ts";
import { ago, json, num, table } from "./output.ts";

export const schedulesListCommand: Command = {
  name: "schedules list",
  summary: "list schedules by name, with their next fire time",
  usage: `usage: runledger schedules list [--active] [--limit N] [--after NAME] [--org ID] [--json]

Schedules by name (pass the last name printed as --after for the next page).
  --active    only active (not paused) schedules

--json: {"items":[{"name","jobType","organizationId","cronExpr","timezone","overlapPolicy",
"isActive","nextFireAt","lastFiredAt","lastJobId","missedSlotCount","overlapSkipCount",…}],
"next":NAME|null}
`,
  options: {
    active: { type: "boolean" },
    limit: { type: "string" },
    after: { type: "string" },
    ...COMMON_OPTIONS,
    ...ORG_OPTION,
  },
  async run(ctx) {
    const limit = intArg(ctx.values.limit as string | undefined, "limit", 50, 1000);
    const page = await listJobSchedules(ctx.db(), {
      scope: ctx.scope,
      activeOnly: ctx.values.active === true,
      limit,
      after: ctx.values.after as string | undefined,
    });
    const items = page.items.map(({ upcoming: _upcoming, ...schedule }) => schedule);
    return printPage(ctx, { items, next: page.next }, "no schedules", (rows) => {
      table(
        ctx.out,
        ["name", "job type", "cron", "state", "next fire"],
        rows.map((s) => [
          s.name,
          s.jobType,
          `${s.cronExpr}${s.timezone === "UTC" ? "" : ` ${s.timezone}`}`,
          s.isActive ? "active" : "paused",
          s.isActive ? ago(s.nextFireAt) : "-",
        ]),
      );
    });
  },
};

function scheduleSwitch(verb: "pause" | "resume"): Command {
  return {
    name: `schedules ${verb}`,
    summary: verb === "pause" ? "pause a schedule (it fires nothing)" : "resume a paused schedule",
    usage: `usage: runledger schedules ${verb} NAME [--org ID] [--json]

${
  verb === "pause"
    ? "Pauses the schedule: it fires nothing and its cursor stays where it was."
    : "Resumes the schedule: slots missed while paused are treated as after a downtime (the latest\nfires at once, earlier ones within the catch-up window too)."
}
Exit 1 when no schedule of that name is visible.

--json: {"name","isActive"}
`,
    options: { ...COMMON_OPTIONS, ...ORG_OPTION },
    positionals: { min: 1, max: 1 },
    async run(ctx) {
      const name = ctx.positionals[0]!;
      const changed = await setJobScheduleActive(ctx.db(), name, verb === "resume", ctx.scope);
      if (!changed) {
        ctx.out.error(`runledger schedules ${verb}: no schedule named ${JSON.stringify(name)}\n`);
        return 1;
      }
      if (ctx.json) json(ctx.out, { name, isActive: verb === "resume" });
      else ctx.out.write(`schedule ${name} ${verb === "pause" ? "paused" : "resumed"}\n`);
      return 0;
    },
  };
}

export const schedulesPauseCommand = scheduleSwitch("pause");
export const schedulesResumeCommand = scheduleSwitch("resume");

export const typesListCommand: Command = {
  name: "types list",
  summary: "job definitions: enabled, defaults, and jobs pending, running, dead",
  usage: `usage: runledger types list [--org ID] [--json]

Every job definition with its switch for new work, its defaults, and how many of its jobs are
pending, running and dead-lettered now (counted as in runledger status; --org counts that
organization's jobs only; definitions are shared by all organizations).

--json: {"items":[{"jobType","isEnabled","paused","version","maxAttempts","defaultTimeoutSeconds",
"defaultPriority","pending","leased","deadLettered","capped"}]}
`,
  options: { ...COMMON_OPTIONS, ...ORG_OPTION },
  async run(ctx) {
    const db = ctx.db();
    const definitions = [];
    for (let after: string | undefined, more = true; more; ) {
      const page = await listJobDefinitions(db, { limit: 1000, after });
      definitions.push(...page.items);
      after = page.next ?? undefined;
      more = page.next !== null;
    }
    const counts = await countJobsByStatus(db, { scope: ctx.scope });
    const items = definitions.map((d) => {
      const mine = counts.byType.filter((c) => c.jobType === d.jobType);
      const of = (status: string) => mine.find((c) => c.status === status)?.count ?? 0;
      return {
        jobType: d.jobType,
        isEnabled: d.isEnabled,
        paused: d.pausedAt !== null,
        version: d.version,
        maxAttempts: d.maxAttempts,
        defaultTimeoutSeconds: d.defaultTimeoutSeconds,
        defaultPriority: d.defaultPriority,
        pending: of("PENDING"),
        leased: of("LEASED"),
        deadLettered: of("DEAD_LETTERED"),
        capped: mine.some((c) => c.capped),
      };
    });
    if (ctx.json) {
      json(ctx.out, { items });
      return 0;
    }
    if (items.length === 0) ctx.out.write("no job definitions\n");
    else {
      table(
        ctx.out,
        ["job type", "enabled", "attempts", "timeout", "pending", "running", "dead"],
        items.map((t) => [
          t.jobType,
          t.isEnabled ? (t.paused ? "paused" : "yes") : "NO",
          String(t.maxAttempts),
          `${t.defaultTimeoutSeconds}s`,
          num(t.pending),
          num(t.leased),
          num(t.deadLettered),
        ]),
        ["left", "left", "right", "right", "right", "right", "right"],
      );
    }
    return 0;
  },
};

/** `types pause|resume`: a job type's pause switch (flow control), for every worker at once. */
function typeSwitch(verb: "pause" | "resume"): Command {
  return {
    name: `types ${verb}`,
    summary: `${verb} claiming a job type on every worker`,
    usage: `usage: runledger types ${verb} JOB_TYPE [--json]

${
  verb === "pause"
    ? "Stop every worker from claiming jobs of JOB_TYPE (durable; running jobs finish). Enqueues still\nwork; the jobs wait."
    : "Let workers claim jobs of JOB_TYPE again; listening workers are woken at once."
} Job types are shared by all organizations. Exit 1 for an
unknown job type.

--json: {"jobType","paused","pausedAt"}
`,
    options: { ...COMMON_OPTIONS },
    positionals: { min: 1, max: 1 },
    async run(ctx) {
      const jobType = ctx.positionals[0]!;
      const change = verb === "pause" ? pauseJobType : resumeJobType;
      const definition = await change(ctx.db(), { jobType });
      const pausedAt = definition.pausedAt;
      if (ctx.json) json(ctx.out, { jobType, paused: pausedAt !== null, pausedAt });
      else ctx.out.write(`job type ${jobType} ${verb === "pause" ? "paused" : "resumed"}\n`);
      return 0;
    },
  };
}

export const typesPauseCommand = typeSwitch("pause");
export const typesResumeCommand = typeSwitch("resume");
