import {
  findStuckLeases,
  getServerInfo,
  inspectSchema,
  listDisabledDefinitionsInUse,
  measureClaimScan,
} from "../store/index.ts";
import { COMMON_OPTIONS, type Command, intArg } from "./command.ts";
import { describeError, json, time } from "./output.ts";

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** `runledger doctor`: read-only health checks; exit 1 when one fails. */
export const doctorCommand: Command = {
  name: "doctor",
  summary: "check connection, server, schema, definitions and leases (exit 1 on a problem)",
  usage: `usage: runledger doctor [--max-claim-pages N] [--json] [--database-url URL]

Read-only checks of the whole system (never DDL, never a change):
  connection     the database answers
  server         PostgreSQL version (14 or newer)
  schema         the migration journal matches this package (no pending migrations)
  definitions    no disabled job type still has unfinished jobs or active schedules
  leases         no lease expired more than 5 minutes ago without being reaped
  claims         a claim reads at most --max-claim-pages pages (default 1000) before it
                 finds work: finished jobs' index entries wait for VACUUM of
                 runledger.job_queue, and every claim walks them
Exits 0 when all pass, 1 when one fails (a deploy can gate on it).

--json: {"ok", "checks":[{"name","ok","detail"}]}
`,
  options: { ...COMMON_OPTIONS, "max-claim-pages": { type: "string" } },
  async run(ctx) {
    const maxClaimPages = intArg(
      ctx.values["max-claim-pages"] as string | undefined,
      "max-claim-pages",
      1000,
      1_000_000,
    );
    const db = ctx.db();
    const checks: Check[] = [];
    try {
      const server = await getServerInfo(db);
      checks.push({ name: "connection", ok: true, detail: `connected to database ${server.database}` });
      checks.push({
        name: "server",
        ok: server.versionNum >= 140000,
        detail: `PostgreSQL ${server.version}${server.versionNum >= 140000 ? "" : " (runledger needs 14 or newer)"}`,
      });
    } catch (error) {
      checks.push({ name: "connection", ok: false, detail: describeError(error).message });
    }
    if (checks[0]!.ok) {
      const schema = await inspectSchema(db);
      checks.push({
        name: "schema",
        ok: schema.state === "current",
        detail:
          schema.state === "current"
            ? `current (${schema.applied} migrations)`
            : `${schema.state}: ${schema.applied} applied, ${schema.bundled} bundled, ${schema.pending} pending` +
              (schema.state === "behind" || schema.state === "uninitialized" ? " (run `runledger migrate`)" : ""),
      });
      if (schema.state === "current") {
        const disabled = await listDisabledDefinitionsInUse(db);
        checks.push({
          name: "definitions",
          ok: disabled.length === 0,
          detail:
            disabled.length === 0
              ? "no disabled job type is still in use"
              : disabled
                  .map(
                    (d) =>
                      `${d.jobType} is disabled: ${d.unfinishedJobs} unfinished jobs, ${d.activeSchedules} active schedules`,
                  )
                  .join("; "),
        });
        const stuck = await findStuckLeases(db);
        checks.push({
          name: "leases",
          ok: stuck.count === 0,
          detail:
            stuck.count === 0
              ? "no expired lease left unreaped"
              : `${stuck.count} leases expired and not reaped (oldest ${time(stuck.oldestExpiredAt)}): is a reaper running?`,
        });
        const scan = await measureClaimScan(db);
        const pages = `${scan.pages} ${scan.pages === 1 ? "page" : "pages"}`;
        const ms = scan.ms < 1 ? scan.ms.toFixed(2) : scan.ms.toFixed(1);
        const vacuum = `last vacuum ${scan.vacuumedAt === null ? "never" : time(scan.vacuumedAt)}${scan.autovacuum ? "" : ", autovacuum off"}`;
        const within = scan.pages <= maxClaimPages;
        const advice = within ? "" : `, over ${maxClaimPages}: VACUUM runledger.job_queue`;
        checks.push({ name: "claims", ok: within, detail: `${pages} per claim (${ms} ms)${advice}; ${vacuum}` });
      }
    }
    const ok = checks.every((c) => c.ok);
    if (ctx.json) json(ctx.out, { ok, checks });
    else {
      for (const c of checks) ctx.out.write(`${c.ok ? "ok  " : "FAIL"}  ${c.name.padEnd(11)} ${c.detail}\n`);
      ctx.out.write(ok ? "\nall checks passed\n" : "\nsome checks failed\n");
    }
    return ok ? 0 : 1;
  },
};
