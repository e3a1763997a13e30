import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../../src/core/index.ts";
import { insertJobLog } from "../../src/store/index.ts";
import { ORG_A, ORG_B, type Seeded, seedDashboard } from "../dashboard/seed.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";
import { parsed, runCli, widest } from "./support.ts";

const { db, url } = await useTestDatabase();
let seeded: Seeded;

beforeAll(async () => {
  seeded = await seedDashboard(db);
  await insertJobLog(db, {
    scope: ALL_ORGANIZATIONS,
    jobId: seeded.deadJobs[0]!,
    runNumber: 1,
    attempt: 1,
    level: "error",
    message: "source gone",
  });
});

const cli = (...args: string[]) => runCli(url, args);

describe("runledger reads", { timeout: 120_000 }, () => {
  it("status: counts by type and status, workers and schema, in 80 columns; --json; --org", async () => {
    const text = await cli("status");
    expect(text).toMatchObject({ code: 0, stderr: "" });
    expect(widest(text.stdout)).toBeLessThanOrEqual(80);
    expect(text.stdout).toMatch(/schema current/);
    expect(text.stdout).toMatch(/email\.send\s+12\s+0\s+0/);
    expect(text.stdout).toMatch(/reports\.build\s+3\s+0\s+2/);
    expect(text.stdout).toMatch(/total\s+18\s+2\s+2/);
    expect(text.stdout).toContain("worker-a1");

    const onlyB = parsed(await cli("status", "--json", "--org", ORG_B));
    expect(onlyB).toMatchObject({
      scope: { organizationId: ORG_B },
      schema: { state: "current", pending: 0 },
      jobs: { pending: { count: 3, capped: false }, leased: { count: 0, capped: false } },
      byType: [{ jobType: "secret.b-only", pending: 3, leased: 0, deadLettered: 0, capped: false }],
      runsRunning: 0,
      oldestPending: { jobType: "secret.b-only" },
      workers: [],
    });
    expect(Object.keys(onlyB).sort()).toEqual(
      ["byType", "jobs", "oldestPending", "runsRunning", "schema", "scope", "workers"].sort(),
    );
  });

  it("jobs list: filters and keyset pages; --json shape", async () => {
    const first = parsed<{ items: { id: string; status: string; organizationId: string }[]; next: string }>(
      await cli("jobs", "list", "--json", "--status", "pending", "--type", "email", "--limit", "8"),
    );
    expect(first.items).toHaveLength(8);
    expect(first.next).toMatch(/^\d{4}-.*_[0-9a-f-]{36}$/);
    const second = parsed<{ items: { id: string }[]; next: string | null }>(
      await cli("jobs", "list", "--json", "--status", "PENDING", "--type", "email", "--after", first.next),
    );
    expect(second.items).toHaveLength(4);
    expect(second.next).toBeNull();
    expect(new Set([...first.items, ...second.items].map((j) => j.id))).toEqual(new Set(seeded.emailJobs));

    const text = await cli("jobs", "list", "--org", ORG_B, "--created-after", "1h");
    expect(text.code).toBe(0);
    expect(widest(text.stdout)).toBeLessThanOrEqual(80);
    expect(text.stdout).toContain(seeded.bJob);
    expect(text.stdout).not.toContain("email.send");
    const none = await cli("jobs", "list", "--created-before", "2000-01-01");
    expect(none.stdout).toBe("no jobs match\n");
  });

  it("jobs show: record, attempts, events, last log lines; unknown id exits 1; another organization's is unknown", async () => {
    const [dead] = seeded.deadJobs;
    const text = await cli("jobs", "show", dead!);
    expect(text).toMatchObject({ code: 0, stderr: "" });
    expect(text.stdout).toContain("DEAD_LETTERED");
    expect(text.stdout).toContain("report.source_missing: no data for month");
    expect(text.stdout).toMatch(/attempts \(1\)/);
    expect(text.stdout).toContain("worker-a2");
    expect(text.stdout).toMatch(/DEAD_LETTERED\s+1\s+1/);
    expect(text.stdout).toMatch(/error\s+source gone/);

    const shown = parsed<{ job: { id: string }; events: { eventType: string }[] }>(
      await cli("jobs", "show", dead!, "--json"),
    );
    expect(Object.keys(shown).sort()).toEqual(["attempts", "events", "job", "logs"]);
    expect(shown.job.id).toBe(dead);
    expect(shown.events.map((e) => e.eventType)).toEqual(["ENQUEUED", "LEASED", "FAILED", "DEAD_LETTERED"]);

    const unknown = await cli("jobs", "show", "00000000-0000-7000-8000-000000000000");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("no job 00000000-0000-7000-8000-000000000000");
    const hidden = await cli("jobs", "show", seeded.bJob, "--org", ORG_A);
    expect(hidden.code).toBe(1);
  });

  it("dead-letters list, runs list and runs show with its DAG", async () => {
    const dead = parsed<{ items: { jobId: string; errorCode: string }[]; next: null }>(
      await cli("dead-letters", "list", "--json", "--type", "reports.build"),
    );
    expect(dead.items.map((d) => d.jobId).sort()).toEqual([...seeded.deadJobs].sort());
    expect(dead.next).toBeNull();

    const runs = await cli("runs", "list", "--org", ORG_A);
    expect(runs.code).toBe(0);
    expect(runs.stdout).toContain(seeded.run);
    expect(runs.stdout).not.toContain(seeded.bRun);

    const shown = await cli("runs", "show", seeded.run);
    expect(shown).toMatchObject({ code: 0, stderr: "" });
    expect(widest(shown.stdout)).toBeLessThanOrEqual(80);
    expect(shown.stdout).toContain(
      [
        "✓ crawl SUCCEEDED",
        "└─▶ ⏸ approve (gate) WAITING_FOR_EXTERNAL",
        "    ├─▶ · persist BLOCKED",
        "    └─▶ · cleanup BLOCKED [after any end]",
      ].join("\n"),
    );
    const json = parsed<{ steps: unknown[]; edges: unknown[] }>(await cli("runs", "show", seeded.run, "--json"));
    expect(json.steps).toHaveLength(4);
    expect(json.edges).toContainEqual({
      prerequisiteStepKey: "approve",
      dependentStepKey: "cleanup",
      releaseMode: "ON_TERMINAL",
    });
    expect((await cli("runs", "show", seeded.run, "--org", ORG_B)).code).toBe(1);
  });

  it("schedules list and types list", async () => {
    const schedules = parsed<{ items: { name: string; isActive: boolean }[] }>(
      await cli("schedules", "list", "--json"),
    );
    expect(schedules.items.map((s) => [s.name, s.isActive])).toEqual([
      ["a-hourly-digest", true],
      ["b-nightly", true],
    ]);
    const types = await cli("types", "list", "--org", ORG_A);
    expect(types.code).toBe(0);
    expect(types.stdout).toMatch(/reports\.build\s+yes\s+1\s+900s\s+3\s+0\s+2/);
    expect(types.stdout).toMatch(/secret\.b-only\s+yes\s+8\s+900s\s+0\s+0\s+0/);
  });

  it("doctor: exit 0 when healthy, 1 with a disabled type in use and an unreaped lease", async () => {
    const healthy = await cli("doctor");
    expect(healthy).toMatchObject({ code: 0, stderr: "" });
    expect(healthy.stdout).toContain("all checks passed");
    expect(healthy.stdout).toMatch(/ok\s+claims\s+\d+ pages? per claim/);

    await defineJob(db, "email.send", { isEnabled: false });
    await db.execute(
      sql`update runledger.job_queue set lease_expires_at = now() - interval '10 minutes' where job_type = 'thumbnails.render' and status = 'LEASED'`,
    );
    const sick = await cli("doctor", "--json");
    expect(sick.code).toBe(1);
    const report = parsed<{ ok: boolean; checks: { name: string; ok: boolean; detail: string }[] }>(sick);
    expect(report.ok).toBe(false);
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      ["connection", true],
      ["server", true],
      ["schema", true],
      ["definitions", false],
      ["leases", false],
      ["claims", true],
    ]);
    expect(report.checks[3]!.detail).toContain("email.send is disabled: 12 unfinished jobs, 1 active schedules");
    expect(report.checks[4]!.detail).toContain("2 leases expired");
    expect(report.checks[5]!.detail).toMatch(/^\d+ pages? per claim \([\d.]+ ms\); last vacuum /);
  });

  it("doctor: the claims check fails past --max-claim-pages and says what to do", async () => {
    const strict = await cli("doctor", "--max-claim-pages", "1");
    expect(strict.code).toBe(1);
    expect(strict.stdout).toMatch(
      /FAIL\s+claims\s+\d+ pages? per claim \([\d.]+ ms\), over 1: VACUUM runledger\.job_queue/,
    );
    const wrong = await cli("doctor", "--max-claim-pages", "0");
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("--max-claim-pages must be a whole number from 1 to 1000000");
  });
});
