// The `dashboard` scenario: how long the dashboard takes to answer with `sizes.dashboardJobs`
// (1,000,000 by default) jobs in the tables. The load phase fills the database through the
// public API the way a busy system leaves it: most jobs succeeded, a backlog pending, some
// running, dead-lettered and canceled, across 10 job types and 10 organizations, all finished
// within the last hour. The measured phase times the fetch handler itself (no HTTP), each
// request on a fresh dashboard so no cached figure is reused: the overview, and the jobs list
// unfiltered, by status, by type and on its second page; for every organization and for one.
import { sql } from "drizzle-orm";
import { ALL_ORGANIZATIONS, createDashboard, type DashboardScope } from "../src/dashboard/index.ts";
import { cancelJob, createDb, enqueueJobs, upsertJobDefinition } from "../src/store/index.ts";
import { claimJobs, completeJobFailure, completeJobsSuccess } from "../src/store/worker.ts";
import type { ChildResult, ScenarioSpec } from "./scenarios.ts";

const TYPES = Array.from({ length: 10 }, (_, i) => `bench.dash.type${i}`);
const ORGS = Array.from({ length: 10 }, (_, i) => `0190f0a0-0000-7000-8000-${String(i).padStart(12, "0")}`);
const BATCH = 1_000;
const CLAIM = 500;
const ITERATIONS = 60;
const WARMUP = 5;

/** How the loaded jobs end up, as fractions of the total. */
const MIX = { pending: 0.093, leased: 0.0002, deadLettered: 0.005, canceled: 0.0018 };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function load(url: string, n: number): Promise<ChildResult> {
  const db = createDb(url, { max: 4 });
  try {
    for (const jobType of TYPES) await upsertJobDefinition(db, { jobType, maxAttempts: 1 });
    for (let first = 0; first < n; first += BATCH) {
      await enqueueJobs(
        db,
        Array.from({ length: Math.min(BATCH, n - first) }, (_, k) => {
          const i = first + k;
          return {
            jobType: TYPES[i % TYPES.length]!,
            organizationId: ORGS[(i * 7) % ORGS.length]!,
            payload: { i, email: `user${i}@example.test`, note: "a payload of a realistic size ".repeat(3) },
          };
        }),
      );
    }
    // Claims take the oldest first, so the backlog left pending is the newest jobs, as in life.
    const finishing = n - Math.round(n * MIX.pending);
    const dead = Math.round(n * MIX.deadLettered);
    const canceled = Math.round(n * MIX.canceled);
    const leased = Math.round(n * MIX.leased);
    let done = 0;
    while (done < finishing - leased) {
      const claimed = await claimJobs(db, {
        workerId: `bench-worker-${done % 3}`,
        leaseSeconds: 3600,
        limit: Math.min(CLAIM, finishing - leased - done),
      });
      const leases = claimed.map((j) => ({
        jobId: j.id,
        runNumber: j.runNumber,
        attempt: j.attempt,
        workerId: j.workerId!,
      }));
      const failing = Math.max(
        0,
        Math.min(
          leases.length,
          Math.ceil(((done + leases.length) * dead) / finishing) - Math.ceil((done * dead) / finishing),
        ),
      );
      const toCancel = Math.max(
        0,
        Math.min(
          leases.length - failing,
          Math.ceil(((done + leases.length) * canceled) / finishing) - Math.ceil((done * canceled) / finishing),
        ),
      );
      for (const lease of leases.slice(0, failing)) {
        await completeJobFailure(db, { lease, kind: "TERMINAL", code: "bench.failed", message: "failed on purpose" });
      }
      for (const lease of leases.slice(failing, failing + toCancel))
        await cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: lease.jobId });
      await completeJobsSuccess(
        db,
        leases.slice(failing + toCancel).map((lease) => ({ lease })),
      );
      done += leases.length;
    }
    await claimJobs(db, { workerId: "bench-worker-busy", leaseSeconds: 3600, limit: leased });
    await db.execute(sql`vacuum analyze`);
    return { ok: true, metrics: { loaded: n }, verified: `${n} jobs loaded` };
  } finally {
    await db.$runledger.close();
  }
}

async function time(handler: (request: Request) => Promise<Response>, path: string): Promise<number> {
  const t0 = performance.now();
  const response = await handler(new Request(`http://bench.test${path}`));
  const body = await response.text();
  const ms = performance.now() - t0;
  if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${body.slice(0, 200)}`);
  return ms;
}

async function measure(url: string, n: number): Promise<ChildResult> {
  const db = createDb(url, { max: 4 });
  try {
    // A fresh dashboard per request: nothing cached between requests, every one pays its queries.
    const fresh = (scope: DashboardScope) => (request: Request) =>
      createDashboard({ db, authorize: () => true, scope: () => scope })(request);
    const all = fresh(ALL_ORGANIZATIONS);
    const one = fresh({ organizationId: ORGS[3]! });

    const firstPage = await (await all(new Request("http://bench.test/jobs"))).text();
    const next = /href="\/jobs\?after=([^"]+)" rel="next"/.exec(firstPage)?.[1];
    if (next === undefined) throw new Error("the jobs list has no next page");
    const overview = await (await all(new Request("http://bench.test/"))).text();
    const pendingShown = /data-count="PENDING">[\s\S]*?<a [^>]*>([\d,+]+)</.exec(overview)?.[1];
    // Pending jobs are counted among the first 10,001 unfinished ones, the leased ones included:
    // over the cap the page shows a lower bound such as "9,800+".
    const expectedPending = Math.round(n * MIX.pending);
    const shown = Number((pendingShown ?? "").replace(/[,+]/g, ""));
    const plausible =
      expectedPending > 10_000
        ? pendingShown?.endsWith("+") === true && shown >= 10_000 - Math.round(n * MIX.leased) - 1
        : pendingShown === expectedPending.toLocaleString("en-US");
    if (!plausible) throw new Error(`overview shows ${pendingShown} pending of ${expectedPending}`);

    const listPaths = [
      "/jobs",
      "/jobs?status=PENDING",
      "/jobs?status=LEASED",
      `/jobs?type=${TYPES[4]}`,
      `/jobs?after=${next}`,
      "/dead-letters",
    ];
    // A status that is rare among finished jobs: no index finds it, so the list reads past the
    // others (reported on its own: the overview links to no such list).
    const rarePath = "/jobs?status=CANCELED";
    const samples = {
      overview: [] as number[],
      jobs: [] as number[],
      orgOverview: [] as number[],
      orgJobs: [] as number[],
      rareStatus: [] as number[],
      orgRareStatus: [] as number[],
    };
    const worst: Record<string, number> = {};
    for (let i = 0; i < WARMUP + ITERATIONS; i++) {
      const record = (key: keyof typeof samples, path: string, ms: number) => {
        if (i < WARMUP) return;
        samples[key].push(ms);
        worst[path] = Math.max(worst[path] ?? 0, ms);
      };
      record("overview", "/", await time(all, "/"));
      record("orgOverview", "/ (one org)", await time(one, "/"));
      for (const path of listPaths) {
        record("jobs", path, await time(all, path));
        record("orgJobs", `${path} (one org)`, await time(one, path));
      }
      record("rareStatus", rarePath, await time(all, rarePath));
      record("orgRareStatus", `${rarePath} (one org)`, await time(one, rarePath));
    }
    const metrics: Record<string, number> = {};
    for (const [key, values] of Object.entries(samples)) {
      values.sort((a, b) => a - b);
      metrics[`${key}P50`] = percentile(values, 50);
      metrics[`${key}P99`] = percentile(values, 99);
    }
    const slowest = Object.entries(worst)
      .filter(([path]) => !path.startsWith(rarePath))
      .sort((a, b) => b[1] - a[1])[0]!;
    return {
      ok: true,
      metrics,
      verified: `overview shows ${pendingShown} pending of ${n.toLocaleString("en-US")} jobs; slowest request ${slowest[0]} ${slowest[1].toFixed(0)} ms`,
    };
  } finally {
    await db.$runledger.close();
  }
}

/** Both phases of the scenario (the child calls this instead of a system's run). */
export function dashboardScenario(spec: ScenarioSpec): Promise<ChildResult> {
  return spec.phase === "load" ? load(spec.url, spec.sizes.dashboardJobs) : measure(spec.url, spec.sizes.dashboardJobs);
}
