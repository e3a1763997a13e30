// What each scenario measures and checks. Shared by the orchestrator (names, sizes) and the child
// (the runs themselves).

export const SCENARIOS = [
  "enqueue-batch",
  "enqueue-single",
  "enqueue-parallel",
  "process-c10",
  "process-c50",
  "latency",
  "workflow",
  "dashboard",
  "scale-p1",
  "scale-p2",
  "scale-p4",
  "flow-keys",
  "fair",
  "soak",
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** What `npm run bench` runs without `--scenarios`: everything but the long soak. */
export const DEFAULT_SCENARIOS: readonly ScenarioName[] = SCENARIOS.filter((s) => s !== "soak");

/** Shorthands accepted by `--scenarios`. */
export const SCENARIO_GROUPS: Record<string, readonly ScenarioName[]> = {
  enqueue: ["enqueue-batch", "enqueue-single", "enqueue-parallel"],
  process: ["process-c10", "process-c50"],
  memory: ["process-c10", "process-c50"],
  scale: ["scale-p1", "scale-p2", "scale-p4"],
  flow: ["flow-keys", "fair"],
};

/** Worker processes of a `scale-pN` scenario (each at `SCALE_CONCURRENCY`), else undefined. */
export function scaleProcesses(scenario: ScenarioName): number | undefined {
  const match = /^scale-p(\d+)$/.exec(scenario);
  return match ? Number(match[1]) : undefined;
}

/** Handlers per worker process in the scale scenarios (as in test/scale/many-workers.test.ts). */
export const SCALE_CONCURRENCY = 25;

export interface Sizes {
  /** Jobs for the batch-enqueue and processing scenarios (default 50,000). */
  jobs: number;
  /** Jobs for the single-enqueue scenarios (default 2,000, never more than `jobs`). */
  single: number;
  /** Jobs for the latency scenario (default 500). */
  latency: number;
  /** Workflow runs (default 100). */
  runs: number;
  /** Jobs in the tables the dashboard scenario reads (20 × jobs: 1,000,000 by default). */
  dashboardJobs: number;
  /** Jobs the soak processes: half plain, half steps of 1→20→1 runs (`--jobs`). */
  soakJobs: number;
  /** How long the soak keeps finished jobs and runs, in seconds (`--retention`, default 60). */
  soakRetentionSeconds: number;
}

export function sizesFor(jobs: number, soakRetentionSeconds = 60): Sizes {
  return {
    soakJobs: jobs,
    soakRetentionSeconds,
    jobs,
    single: Math.min(2_000, jobs),
    latency: Math.min(500, jobs),
    runs: Math.min(100, jobs),
    dashboardJobs: jobs * 20,
  };
}

/** Which scenarios a system skips (and why). */
export function skipReason(system: string, scenario: ScenarioName): string | undefined {
  if (scenario === "workflow" && (system === "graphile" || system.startsWith("raw"))) return "no workflow DAGs";
  if (system === "baseline" && !process.env.RUNLEDGER_BASELINE_BUILD) return "RUNLEDGER_BASELINE_BUILD is not set";
  if (scenario === "dashboard" && system !== "runledger") return "no dashboard of ours";
  if (scaleProcesses(scenario) !== undefined && system !== "runledger" && system !== "unprepared") {
    return "runledger's own scaling scenario";
  }
  if ((scenario === "flow-keys" || scenario === "fair") && system !== "runledger") return "runledger flow control only";
  if (scenario === "soak" && system !== "runledger") return "retention soak of runledger only";
  return undefined;
}

export interface ScenarioSpec {
  system: string;
  scenario: ScenarioName;
  url: string;
  sizes: Sizes;
  /** Run ANALYZE after loading (default). `--no-analyze` leaves the planner without statistics. */
  analyze: boolean;
  /** Also count the processing runs' WAL records per job by kind (`--anatomy`, needs pg_walinspect). */
  anatomy?: boolean;
  /**
   * `load`: only install and fill the database (processing scenarios run this in a process of
   * its own first, so the worker's process — and its peak RSS — never held the enqueue side).
   */
  phase?: "load";
  /**
   * The run compares runledger with its telemetry compiled out (`untraced` is among the systems):
   * every runledger variant then loads through a module hook, which only `untraced`'s changes, so
   * the hook's thread is no difference between them.
   */
  telemetryPaired?: boolean;
  /**
   * `--callgrind`: the measured child runs under valgrind's callgrind in this directory and reports
   * the instructions it executed per job between the start and the end of its cost measure.
   */
  callgrindDir?: string;
}

/** Scenarios whose backlog is loaded by a separate `load` child before the measured one. */
export function hasLoadPhase(scenario: ScenarioName): boolean {
  return (
    scenario === "process-c10" ||
    scenario === "process-c50" ||
    scenario === "dashboard" ||
    scaleProcesses(scenario) !== undefined
  );
}

/** One line a child prints: the metrics of a verified run, or why it failed. */
export type ChildResult =
  | { ok: true; metrics: Record<string, number>; verified: string }
  | { ok: false; error: string };
