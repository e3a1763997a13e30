import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import { toDateOrNull } from "../rows.ts";
import {
  claimScanPath,
  claimScanProbe,
  disabledDefinitionsUse,
  queueVacuum,
  serverInfo,
  stuckLeases,
} from "../sql/admin.ts";
import { fail, isValidDate } from "../validate.ts";

/*
 * Whole-system health checks for `runledger doctor`: read-only, bounded, and about the system
 * rather than one tenant's data (they return figures and job types, never another
 * organization's rows). Statements: sql/admin.ts.
 */

/** The server the executor is connected to. */
export interface ServerInfo {
  /** `server_version`, such as `15.18`. */
  version: string;
  /** `server_version_num`, such as 150018. */
  versionNum: number;
  database: string;
}

/** Which PostgreSQL server and database the executor talks to (one round trip). */
export async function getServerInfo(executor: Executor): Promise<ServerInfo> {
  return translating(async () => {
    const [row] = await serverInfo.run(executor, {});
    return { version: row!.version, versionNum: Number(row!.version_num), database: row!.database };
  });
}

/** A disabled job definition that work still refers to. */
export interface DisabledDefinitionInUse {
  jobType: string;
  /** Its pending and leased jobs (counted up to 10,000). */
  unfinishedJobs: number;
  /** Its active schedules, which keep firing jobs that cannot be enqueued. */
  activeSchedules: number;
}

/**
 * Disabled job definitions that still have unfinished jobs or active schedules: work that waits
 * for a type nobody may enqueue any more, or a schedule that fails at every slot.
 */
export async function listDisabledDefinitionsInUse(executor: Executor): Promise<DisabledDefinitionInUse[]> {
  return translating(async () => {
    const rows = await disabledDefinitionsUse.run(executor, {});
    return rows
      .map((row) => ({
        jobType: row.job_type,
        unfinishedJobs: Number(row.unfinished),
        activeSchedules: Number(row.schedules),
      }))
      .filter((row) => row.unfinishedJobs > 0 || row.activeSchedules > 0);
  });
}

/** Leases that expired and were not yet reaped. */
export interface StuckLeases {
  /** Leased jobs whose lease expired more than `graceSeconds` ago (counted up to 10,000). */
  count: number;
  /** The oldest such expiry, or null. */
  oldestExpiredAt: Date | null;
}

/**
 * Leased jobs whose lease expired more than `graceSeconds` (default 300) before `now` (the
 * database's clock when omitted): the reaper should have retried or dead-lettered them, so either
 * no reaper runs or it is failing. Reads the unfinished jobs only (the claim index's rows).
 */
export async function findStuckLeases(
  executor: Executor,
  options: { graceSeconds?: number; now?: Date } = {},
): Promise<StuckLeases> {
  const grace = options.graceSeconds ?? 300;
  if (!Number.isInteger(grace) || grace < 0 || grace > 7 * 86_400)
    fail("job.invalid_pagination", { field: "graceSeconds" });
  if (options.now !== undefined && !isValidDate(options.now)) fail("job.invalid_pagination", { field: "now" });
  return translating(async () => {
    const [row] = await queryRows<{ n: number; oldest: string | Date | null }>(
      executor,
      stuckLeases(grace, options.now),
    );
    return { count: Number(row!.n), oldestExpiredAt: toDateOrNull(row!.oldest) };
  });
}

/** What a claim reads before it finds work (see `measureClaimScan`). */
export interface ClaimScan {
  /** Pages (index and table, from cache or disk) read to reach the first runnable job, or to find none. */
  pages: number;
  /** How long that took on the server, in milliseconds. */
  ms: number;
  /** Whether a runnable job was found (when none is, the scan went through every unfinished job's entry). */
  found: boolean;
  /** When `runledger.job_queue` was last vacuumed, by hand or by autovacuum; null if never since statistics were reset. */
  vacuumedAt: Date | null;
  /** Whether autovacuum may vacuum `runledger.job_queue` (the server's setting and the table's). */
  autovacuum: boolean;
}

/**
 * How many pages a claim reads before it reaches the first runnable job: a finished job's entry
 * stays in the claim index until `VACUUM` removes it, and every claim walks such entries at the
 * head of the index (README "Performance": after 50,000 jobs without a vacuum, 380 pages and
 * 1.5 ms per claim; after one, 50 pages and 0.1 ms). Runs the claim's scan without its lock, so
 * it changes no row, twice: the first pass visits the rows of entries no scan has seen since their
 * jobs finished and marks those entries dead (a cost each entry costs once), the second reads
 * what every claim reads until the next vacuum, which is what this reports.
 */
export async function measureClaimScan(executor: Executor): Promise<ClaimScan> {
  return translating(async () => {
    // The claim index's walk, whatever the planner would pick for this one query without
    // statistics (a scan of the whole table and a sort, which says nothing about claims).
    const { explained, vacuum } = await executor.transaction(async (tx) => {
      await tx.execute(claimScanPath);
      await queryRows(tx, claimScanProbe);
      const [second] = await queryRows<{ "QUERY PLAN": unknown }>(tx, claimScanProbe);
      const [stats] = await queueVacuum.run(tx, {});
      return { explained: second, vacuum: stats };
    });
    const raw = explained!["QUERY PLAN"];
    const [report] = (typeof raw === "string" ? JSON.parse(raw) : raw) as ExplainReport[];
    const plan = report!.Plan;
    return {
      pages: (plan["Shared Hit Blocks"] ?? 0) + (plan["Shared Read Blocks"] ?? 0),
      ms: report!["Execution Time"],
      found: (plan["Actual Rows"] ?? 0) > 0,
      vacuumedAt: toDateOrNull(vacuum?.vacuumed_at ?? null),
      autovacuum: vacuum?.autovacuum === true,
    };
  });
}

/** The parts of `explain (analyze, buffers, format json)` that `measureClaimScan` reads. */
interface ExplainReport {
  Plan: { "Actual Rows"?: number; "Shared Hit Blocks"?: number; "Shared Read Blocks"?: number };
  "Execution Time": number;
}
