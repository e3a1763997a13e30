// What runledger's OpenTelemetry instrumentation costs the worker, from paired rounds: in each
// round the same processing scenario ran with telemetry compiled out (`untraced`), with the API
// present and no SDK registered (`runledger`, what an application without OpenTelemetry runs) and
// with an SDK and in-memory exporters (`otel`). Worker CPU per job is the measure: unlike
// throughput it is barely moved by other processes on a busy machine, and differences are taken
// within a round, so drift between rounds cancels.
import type { RunRecord } from "./report.ts";
import type { ScenarioName } from "./scenarios.ts";
import type { SystemName } from "./system.ts";

/** Two-sided 95 % Student t quantiles by degrees of freedom (1–30; beyond, the normal's 1.96). */
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11,
  2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export interface MeanInterval {
  mean: number;
  /** Half-width of the 95 % confidence interval (NaN with fewer than two rounds). */
  half: number;
  rounds: number;
}

/** Mean and 95 % confidence interval (Student t) of paired per-round values. */
export function meanInterval(values: readonly number[]): MeanInterval {
  const k = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / k;
  if (k < 2) return { mean, half: Number.NaN, rounds: k };
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / (k - 1);
  const t = T95[k - 2] ?? 1.96;
  return { mean, half: (t * Math.sqrt(variance)) / Math.sqrt(k), rounds: k };
}

/** Per round, `metric` of `system` paired with `reference` in the same round and scenario. */
function pairs(
  runs: readonly RunRecord[],
  scenario: ScenarioName,
  system: SystemName,
  reference: SystemName,
  metric: string,
): [number, number][] {
  const out: [number, number][] = [];
  const value = (r: RunRecord | undefined) => (r?.ok ? r.metrics?.[metric] : undefined);
  for (const run of runs) {
    if (run.scenario !== scenario || run.system !== system) continue;
    const a = value(run);
    const b = value(runs.find((r) => r.round === run.round && r.scenario === scenario && r.system === reference));
    if (a !== undefined && b !== undefined && b > 0) out.push([a, b]);
  }
  return out;
}

const COMPARED: { system: SystemName; label: string }[] = [
  { system: "runledger", label: "API present, no SDK" },
  { system: "otel", label: "SDK, in-memory exporters" },
];

const SCENARIOS: ScenarioName[] = ["process-c10", "process-c50"];

const fmt = (x: number, digits: number) =>
  Number.isFinite(x)
    ? x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "—";
const signed = (x: number, digits: number) => (x >= 0 ? "+" : "") + fmt(x, digits);
const interval = (m: MeanInterval, digits: number, unit: string) =>
  `${signed(m.mean, digits)}${unit} ± ${fmt(m.half, digits)}${unit}`;

/**
 * The paired telemetry cost table (Markdown), or "" when the run had no `untraced` rounds of a
 * processing scenario to compare with.
 */
export function telemetryCostTable(runs: readonly RunRecord[]): string {
  const lines: string[] = [];
  for (const scenario of SCENARIOS) {
    for (const { system, label } of COMPARED) {
      const cpu = pairs(runs, scenario, system, "untraced", "workerCpuUsPerJob");
      if (cpu.length === 0) continue;
      const speed = pairs(runs, scenario, system, "untraced", "jobsPerSec");
      const instructions = pairs(runs, scenario, system, "untraced", "instructionsPerJob");
      const base = meanInterval(cpu.map(([, b]) => b));
      const extra = meanInterval(cpu.map(([a, b]) => a - b));
      const cpuRatio = meanInterval(cpu.map(([a, b]) => (a / b - 1) * 100));
      const speedRatio = meanInterval(speed.map(([a, b]) => (a / b - 1) * 100));
      const counted =
        instructions.length === 0
          ? "— | — | —"
          : `${fmt(meanInterval(instructions.map(([, b]) => b)).mean, 0)} | ` +
            `${interval(meanInterval(instructions.map(([a, b]) => a - b)), 0, "")} | ` +
            `${interval(meanInterval(instructions.map(([a, b]) => (a / b - 1) * 100)), 2, " %")}`;
      lines.push(
        `| ${scenario} | ${label} | ${cpu.length} | ${fmt(base.mean, 2)} | ${interval(extra, 2, " µs")} | ` +
          `${interval(cpuRatio, 1, " %")} | ${interval(speedRatio, 1, " %")} | ${counted} |`,
      );
    }
  }
  if (lines.length === 0) return "";
  return [
    "## Telemetry cost (paired with telemetry compiled out)",
    "",
    'Per round, each variant minus `untraced` (runledger with `activeTracer`/`activeMeter` answering "none" without asking the API) in the same round; mean ± half-width of the 95 % confidence interval (Student t) over the rounds.',
    "",
    "| scenario | variant | rounds | untraced worker CPU, µs/job | extra worker CPU per job | worker CPU | jobs/s | untraced instructions/job | extra instructions per job | instructions |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...lines,
  ].join("\n");
}
