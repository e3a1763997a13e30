// Turns the runs into the summary: median and min–max per (scenario, metric, system), the results
// table, and the targets (met / not met, with the ratio), as Markdown and JSON.
import type { ScenarioName, Sizes } from "./scenarios.ts";
import type { SystemName } from "./system.ts";

export interface RunRecord {
  round: number;
  scenario: ScenarioName;
  system: SystemName;
  ok: boolean;
  ms: number;
  metrics?: Record<string, number>;
  verified?: string;
  error?: string;
  stderrTail?: string;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  rounds: number;
}

export const SYSTEM_LABELS: Record<SystemName, string> = {
  runledger: "runledger",
  graphile: "graphile-worker",
  pgboss: "pg-boss",
  raw: "raw SQL ceiling",
  rawledger: "raw SQL with a ledger",
  "rawledger-min": "raw SQL with a ledger, minimal",
  "rawledger-hot": "raw SQL with a ledger, HOT claim",
  baseline: "runledger (baseline)",
  unprepared: "runledger (pooled: no prepared statements)",
  untraced: "runledger (telemetry compiled out)",
  otel: "runledger (OpenTelemetry SDK)",
};

interface Row {
  scenario: ScenarioName;
  metric: string;
  label: (sizes: Sizes) => string;
  /** Shown value from the stored one (e.g. KB → MB). */
  scale?: number;
  digits: number;
}

const n = (x: number) => x.toLocaleString("en-US");

const ROWS: Row[] = [
  {
    scenario: "enqueue-batch",
    metric: "jobsPerSec",
    label: (s) => `batch enqueue ${n(s.jobs)} (1k per call), jobs/s`,
    digits: 0,
  },
  {
    scenario: "enqueue-batch",
    metric: "serverCpuUsPerJob",
    label: () => "batch enqueue: PostgreSQL CPU per job, µs",
    digits: 1,
  },
  {
    scenario: "enqueue-batch",
    metric: "walBytesPerJob",
    label: () => "batch enqueue: WAL bytes per job, without full-page images",
    digits: 0,
  },
  {
    scenario: "enqueue-batch",
    metric: "indexEntriesPerJob",
    label: () => "batch enqueue: index entries inserted per job",
    digits: 2,
  },
  {
    scenario: "enqueue-single",
    metric: "jobsPerSec",
    label: (s) => `single enqueue ${n(s.single)}, sequential, jobs/s`,
    digits: 0,
  },
  {
    scenario: "enqueue-parallel",
    metric: "jobsPerSec",
    label: (s) => `single enqueue ${n(s.single)}, 20 in flight, jobs/s`,
    digits: 0,
  },
  {
    scenario: "process-c10",
    metric: "jobsPerSec",
    label: (s) => `process ${n(s.jobs)} queued, concurrency 10, jobs/s`,
    digits: 0,
  },
  {
    scenario: "process-c50",
    metric: "jobsPerSec",
    label: (s) => `process ${n(s.jobs)} queued, concurrency 50, jobs/s`,
    digits: 0,
  },
  {
    scenario: "process-c10",
    metric: "serverCpuUsPerJob",
    label: () => "PostgreSQL CPU per job, concurrency 10, µs",
    digits: 1,
  },
  {
    scenario: "process-c10",
    metric: "workerCpuUsPerJob",
    label: () => "worker CPU per job, concurrency 10, µs",
    digits: 1,
  },
  {
    scenario: "process-c50",
    metric: "serverCpuUsPerJob",
    label: () => "PostgreSQL CPU per job, concurrency 50, µs",
    digits: 1,
  },
  {
    scenario: "process-c50",
    metric: "workerCpuUsPerJob",
    label: () => "worker CPU per job, concurrency 50, µs",
    digits: 1,
  },
  {
    scenario: "process-c10",
    metric: "walRecordsPerJob",
    label: () => "WAL records per job (this database's relations), concurrency 10",
    digits: 1,
  },
  {
    scenario: "process-c10",
    metric: "walBytesPerJob",
    label: () => "WAL bytes per job, without full-page images, concurrency 10",
    digits: 0,
  },
  {
    scenario: "process-c10",
    metric: "heapInsertsPerJob",
    label: () => "heap inserts per job, concurrency 10",
    digits: 2,
  },
  {
    scenario: "process-c10",
    metric: "hotUpdatesPerJob",
    label: () => "HOT updates per job, concurrency 10",
    digits: 2,
  },
  {
    scenario: "process-c10",
    metric: "updatesPerJob",
    label: () => "other updates per job, concurrency 10",
    digits: 2,
  },
  {
    scenario: "process-c10",
    metric: "deletesPerJob",
    label: () => "deletes per job, concurrency 10",
    digits: 2,
  },
  {
    scenario: "process-c10",
    metric: "indexEntriesPerJob",
    label: () => "index entries inserted per job, concurrency 10",
    digits: 2,
  },
  {
    scenario: "process-c10",
    metric: "commitsPerJob",
    label: () => "transactions per job, concurrency 10",
    digits: 4,
  },
  {
    scenario: "latency",
    metric: "p50",
    label: (s) => `pickup latency p50 (${s.latency} jobs 10 ms apart), ms`,
    digits: 1,
  },
  { scenario: "latency", metric: "p95", label: () => "pickup latency p95, ms", digits: 1 },
  { scenario: "latency", metric: "p99", label: () => "pickup latency p99, ms", digits: 1 },
  {
    scenario: "workflow",
    metric: "stepsPerSec",
    label: (s) => `workflow ${s.runs} runs of 1→20→1, steps/s`,
    digits: 0,
  },
  { scenario: "workflow", metric: "runP50Ms", label: () => "workflow run completion p50, ms", digits: 0 },
  { scenario: "workflow", metric: "runMaxMs", label: () => "workflow run completion max, ms", digits: 0 },
  {
    scenario: "dashboard",
    metric: "overviewP50",
    label: (s) => `dashboard overview p50 (${n(s.dashboardJobs)} jobs), ms`,
    digits: 1,
  },
  { scenario: "dashboard", metric: "overviewP99", label: () => "dashboard overview p99, ms", digits: 1 },
  { scenario: "dashboard", metric: "jobsP50", label: () => "dashboard jobs list p50 (6 filters/pages), ms", digits: 1 },
  { scenario: "dashboard", metric: "jobsP99", label: () => "dashboard jobs list p99, ms", digits: 1 },
  {
    scenario: "dashboard",
    metric: "orgOverviewP99",
    label: () => "dashboard overview p99, one organization, ms",
    digits: 1,
  },
  {
    scenario: "dashboard",
    metric: "orgJobsP99",
    label: () => "dashboard jobs list p99, one organization, ms",
    digits: 1,
  },
  {
    scenario: "dashboard",
    metric: "rareStatusP99",
    label: () => "dashboard jobs list of a rare status (CANCELED) p99, ms",
    digits: 1,
  },
  {
    scenario: "dashboard",
    metric: "orgRareStatusP99",
    label: () => "dashboard jobs list of a rare status p99, one organization, ms",
    digits: 1,
  },
  ...[1, 2, 3, 4].flatMap((q): Row[] => [
    {
      scenario: "soak",
      metric: `q${q}JobsPerSec`,
      label: (s) => `soak ${n(s.soakJobs)} jobs, retention ${s.soakRetentionSeconds} s: quarter ${q} jobs/s`,
      digits: 0,
    },
    { scenario: "soak", metric: `q${q}SizeMb`, label: () => `soak quarter ${q}: tables + indexes, MB`, digits: 1 },
    { scenario: "soak", metric: `q${q}DeadTuples`, label: () => `soak quarter ${q}: dead tuples`, digits: 0 },
  ]),
  { scenario: "soak", metric: "sizeRatio", label: () => "soak size, last quarter / second", digits: 2 },
  { scenario: "soak", metric: "throughputRatio", label: () => "soak jobs/s, last quarter / first", digits: 2 },
  {
    scenario: "flow-keys",
    metric: "jobsPerSec",
    label: (s) => `flow control: ${n(s.jobs)} jobs over 100 keys, 2 running per key (concurrency 50), jobs/s`,
    digits: 0,
  },
  {
    scenario: "flow-keys",
    metric: "maxRunningPerKey",
    label: () => "flow control: most running per key (sampled)",
    digits: 0,
  },
  {
    scenario: "fair",
    metric: "strictP50",
    label: () => "fairness off: tenant B pickup p50 while A drains, ms",
    digits: 0,
  },
  { scenario: "fair", metric: "strictP99", label: () => "fairness off: tenant B pickup p99, ms", digits: 0 },
  {
    scenario: "fair",
    metric: "fairP50",
    label: () => "fairness on: tenant B pickup p50 while A drains, ms",
    digits: 0,
  },
  { scenario: "fair", metric: "fairP99", label: () => "fairness on: tenant B pickup p99, ms", digits: 0 },
  { scenario: "fair", metric: "strictAJobsPerSec", label: () => "fairness off: tenant A jobs/s", digits: 0 },
  { scenario: "fair", metric: "fairAJobsPerSec", label: () => "fairness on: tenant A jobs/s", digits: 0 },
  {
    scenario: "process-c10",
    metric: "maxRssKb",
    label: () => "worker peak RSS, concurrency 10, MB",
    scale: 1 / 1024,
    digits: 0,
  },
  {
    scenario: "process-c50",
    metric: "maxRssKb",
    label: () => "worker peak RSS, concurrency 50, MB",
    scale: 1 / 1024,
    digits: 0,
  },
  ...([1, 2, 4] as const).map(
    (k): Row => ({
      scenario: `scale-p${k}`,
      metric: "jobsPerSec",
      label: (s) => `process ${n(s.jobs)} queued, ${k} worker process${k > 1 ? "es" : ""} × 25, jobs/s`,
      digits: 0,
    }),
  ),
  ...([1, 2, 4] as const).flatMap((k): Row[] => [
    {
      scenario: `scale-p${k}`,
      metric: "serverCpuUsPerJob",
      label: () => `PostgreSQL CPU per job, ${k} worker process${k > 1 ? "es" : ""}, µs`,
      digits: 1,
    },
    {
      scenario: `scale-p${k}`,
      metric: "workerCpuUsPerJob",
      label: () => `worker CPU per job, all ${k} process${k > 1 ? "es" : ""}, µs`,
      digits: 1,
    },
  ]),
];

export function stat(values: number[]): Stat | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, rounds: sorted.length };
}

/**
 * Summary per scenario → metric → system over the verified rounds; `failed` counts rounds that
 * did not verify. A system with no run of a scenario (skipped) has no entry.
 */
export function summarize(runs: RunRecord[]) {
  const out: Record<string, Record<string, Record<string, Stat & { failed: number }>>> = {};
  for (const run of runs) {
    const mine = runs.filter((r) => r.scenario === run.scenario && r.system === run.system);
    const failed = mine.filter((r) => !r.ok).length;
    const metrics = new Set(ROWS.filter((row) => row.scenario === run.scenario).map((row) => row.metric));
    for (const r of mine) for (const metric of Object.keys(r.metrics ?? {})) metrics.add(metric);
    for (const metric of metrics) {
      const values = mine
        .filter((r) => r.ok)
        .map((r) => r.metrics?.[metric])
        .filter((v): v is number => typeof v === "number" && Number.isFinite(v));
      const s = stat(values) ?? { median: Number.NaN, min: Number.NaN, max: Number.NaN, rounds: 0 };
      const byMetric = out[run.scenario] ?? {};
      out[run.scenario] = byMetric;
      byMetric[metric] = { ...byMetric[metric], [run.system]: { ...s, failed } };
    }
  }
  return out;
}

export type Summary = ReturnType<typeof summarize>;

function cell(s: (Stat & { failed: number }) | undefined, row: Row): string {
  if (s === undefined) return "—";
  const fmt = (x: number) =>
    (x * (row.scale ?? 1)).toLocaleString("en-US", {
      maximumFractionDigits: row.digits,
      minimumFractionDigits: row.digits,
    });
  if (s.failed > 0) return `**FAILED** (${s.failed} of ${s.failed + s.rounds})`;
  if (s.rounds === 0) return "—";
  if (s.rounds === 1) return fmt(s.median);
  return `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
}

export function resultsTable(summary: Summary, systems: readonly SystemName[], sizes: Sizes): string {
  const lines = [
    `| metric | ${systems.map((s) => SYSTEM_LABELS[s]).join(" | ")} |`,
    `|---|${systems.map(() => "---:").join("|")}|`,
  ];
  for (const row of ROWS) {
    const bySystem = summary[row.scenario]?.[row.metric];
    if (bySystem === undefined) continue;
    lines.push(`| ${row.label(sizes)} | ${systems.map((s) => cell(bySystem[s], row)).join(" | ")} |`);
  }
  return lines.join("\n");
}

export interface TargetResult {
  target: string;
  status: "met" | "not met" | "n/a";
  detail: string;
}

export function checkTargets(summary: Summary, runs: readonly RunRecord[] = []): TargetResult[] {
  const median = (scenario: string, metric: string, system: SystemName): number | undefined => {
    const s = summary[scenario]?.[metric]?.[system];
    return s && s.failed === 0 && s.rounds > 0 ? s.median : undefined;
  };
  /** Our value over theirs in each round both verified (rounds alternate the systems). */
  const perRound = (scenario: string, metric: string, other: SystemName): number[] => {
    const value = (system: SystemName, round: number) =>
      runs.find((r) => r.ok && r.round === round && r.scenario === scenario && r.system === system)?.metrics?.[metric];
    return [...new Set(runs.map((r) => r.round))].flatMap((round) => {
      const ours = value("runledger", round);
      const theirs = value(other, round);
      return ours === undefined || theirs === undefined ? [] : [ours / theirs];
    });
  };
  const ratio = (target: string, scenario: string, metric: string, other: SystemName, min: number): TargetResult => {
    const ours = median(scenario, metric, "runledger");
    const theirs = median(scenario, metric, other);
    if (ours === undefined || theirs === undefined) return { target, status: "n/a", detail: "no verified data" };
    const r = ours / theirs;
    const rounds = perRound(scenario, metric, other);
    return {
      target,
      status: r >= min ? "met" : "not met",
      detail:
        `${r.toFixed(2)}× (${n(Math.round(ours))} vs ${n(Math.round(theirs))})` +
        (rounds.length > 1 ? `; per round ${rounds.map((x) => x.toFixed(2)).join(", ")}` : ""),
    };
  };
  const atMost = (
    target: string,
    scenario: string,
    metric: string,
    max: number,
    scale = 1,
    unit = "ms",
  ): TargetResult => {
    const ours = median(scenario, metric, "runledger");
    if (ours === undefined) return { target, status: "n/a", detail: "no verified data" };
    const v = ours * scale;
    return {
      target,
      status: v <= max ? "met" : "not met",
      detail: `${v.toFixed(1)} ${unit} (${(v / max).toFixed(2)}× the limit)`,
    };
  };
  const atLeast = (target: string, scenario: string, metric: string, min: number): TargetResult => {
    const ours = median(scenario, metric, "runledger");
    if (ours === undefined) return { target, status: "n/a", detail: "no verified data" };
    return { target, status: ours >= min ? "met" : "not met", detail: `${ours.toFixed(2)} (limit ${min})` };
  };
  return [
    atMost("soak: size in the last quarter ≤ 1.2× the second", "soak", "sizeRatio", 1.2, 1, "×"),
    atLeast("soak: jobs/s in the last quarter ≥ 0.9× the first", "soak", "throughputRatio", 0.9),
    ratio("processing, concurrency 10: ≥ 1.3× graphile-worker", "process-c10", "jobsPerSec", "graphile", 1.3),
    ratio("processing, concurrency 50: ≥ 1.3× graphile-worker", "process-c50", "jobsPerSec", "graphile", 1.3),
    atMost("PostgreSQL CPU per job, concurrency 10: ≤ 45 µs", "process-c10", "serverCpuUsPerJob", 45, 1, "µs"),
    atMost("worker CPU per job, concurrency 10: ≤ 25 µs", "process-c10", "workerCpuUsPerJob", 25, 1, "µs"),
    ratio("bulk enqueue: ≥ graphile-worker addJobs", "enqueue-batch", "jobsPerSec", "graphile", 1),
    atMost("pickup latency p50 ≤ 5 ms", "latency", "p50", 5),
    atMost("pickup latency p99 ≤ 25 ms", "latency", "p99", 25),
    ratio("workflow steps/s: ≥ 3.5× pg-boss", "workflow", "stepsPerSec", "pgboss", 3.5),
    atMost("dashboard overview p99 ≤ 150 ms", "dashboard", "overviewP99", 150),
    atMost("dashboard jobs list p99 ≤ 150 ms", "dashboard", "jobsP99", 150),
    atMost("fairness on: tenant B pickup p99 ≤ 1 s", "fair", "fairP99", 1000),
    atMost("worker peak RSS, concurrency 10: ≤ 150 MB", "process-c10", "maxRssKb", 150, 1 / 1024, "MB"),
    atMost("worker peak RSS, concurrency 50: ≤ 150 MB", "process-c50", "maxRssKb", 150, 1 / 1024, "MB"),
    ratio("processing, concurrency 10: vs the baseline build", "process-c10", "jobsPerSec", "baseline", 1),
    ratio("processing, concurrency 50: vs the baseline build", "process-c50", "jobsPerSec", "baseline", 1),
  ].filter((t) => t.status !== "n/a" || !(t.target.includes("baseline") || t.target.startsWith("soak")));
}

export function targetsTable(targets: TargetResult[]): string {
  return [
    "| target (runledger, medians of this run) | status | measured |",
    "|---|---|---|",
    ...targets.map((t) => `| ${t.target} | ${t.status === "not met" ? "**not met**" : t.status} | ${t.detail} |`),
  ].join("\n");
}
