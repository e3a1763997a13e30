// `npm run bench`: every (round, scenario, system) in a fresh database and a child process of its
// own, rounds alternating the systems; prints the results table and the targets and writes them
// to <out>/latest.json and <out>/latest.md. Exit code 1 when any run failed its verification.
//
//   npm run bench -- --rounds 3 --scenarios process,latency --systems runledger,graphile --jobs 5000
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { checkTargets, type RunRecord, resultsTable, SYSTEM_LABELS, summarize, targetsTable } from "./report.ts";
import {
  type ChildResult,
  DEFAULT_SCENARIOS,
  hasLoadPhase,
  SCENARIO_GROUPS,
  SCENARIOS,
  type ScenarioName,
  type ScenarioSpec,
  sizesFor,
  skipReason,
} from "./scenarios.ts";
import { DEFAULT_SYSTEMS, SYSTEM_NAMES, type SystemName } from "./system.ts";
import { telemetryCostTable } from "./telemetry-cost.ts";

// `npm run bench` runs the compiled copy in .bench-build/ (plain JavaScript, like the peers and
// like a production worker); `node --import tsx bench/run.ts` runs the sources.
const COMPILED = import.meta.url.endsWith(".js");
const ROOT = fileURLToPath(new URL(COMPILED ? "../.." : "..", import.meta.url));
const CHILD = fileURLToPath(new URL(COMPILED ? "./child.js" : "./child.ts", import.meta.url));
const CHILD_ARGS = COMPILED ? [CHILD] : ["--import", "tsx", CHILD];
const CHILD_TIMEOUT_MS = 15 * 60_000;
/** The soak runs as long as it takes to process its jobs; a million took about … on 2 cores. */
const SOAK_TIMEOUT_MS = 4 * 60 * 60_000;

const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    scenarios: { type: "string", default: DEFAULT_SCENARIOS.join(",") },
    systems: { type: "string", default: DEFAULT_SYSTEMS.join(",") },
    jobs: { type: "string", default: "50000" },
    retention: { type: "string", default: "60" },
    out: { type: "string", default: path.join(ROOT, "bench", "results") },
    "no-analyze": { type: "boolean", default: false },
    anatomy: { type: "boolean", default: false },
    callgrind: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (flags.help) {
  console.log(`usage: npm run bench -- [--rounds N] [--scenarios a,b] [--systems a,b] [--jobs N] [--retention S] [--out dir] [--no-analyze] [--anatomy] [--callgrind]
  scenarios: ${SCENARIOS.join(", ")} (groups: ${Object.keys(SCENARIO_GROUPS).join(", ")}; soak only when named)
  soak:      --jobs N jobs (half plain, half 1→20→1 workflow steps; 10 % fail once) processed while
             retention (--retention S seconds, default 60) sweeps; size and speed per quarter
  systems:   ${SYSTEM_NAMES.join(", ")}`);
  process.exit(0);
}

function list<T extends string>(raw: string, known: readonly T[], groups: Record<string, readonly T[]> = {}): T[] {
  const out = new Set<T>();
  for (const item of raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const group = groups[item];
    if (group) for (const g of group) out.add(g);
    else if ((known as readonly string[]).includes(item)) out.add(item as T);
    else throw new Error(`unknown "${item}"; expected one of ${[...known, ...Object.keys(groups)].join(", ")}`);
  }
  return known.filter((k) => out.has(k));
}

function positive(raw: string, name: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive whole number`);
  return value;
}

const rounds = positive(flags.rounds, "rounds");
const scenarios = list<ScenarioName>(flags.scenarios, SCENARIOS, SCENARIO_GROUPS);
const systems = list<SystemName>(flags.systems, SYSTEM_NAMES);
const analyze = !flags["no-analyze"];
const sizes = sizesFor(positive(flags.jobs, "jobs"), positive(flags.retention, "retention"));
const serverUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });

let current: { db: string; child?: ReturnType<typeof spawn> } | undefined;
const callgrindDir = flags.callgrind ? await mkdtemp(path.join(os.tmpdir(), "runledger-callgrind-")) : undefined;

async function dropDatabase(name: string): Promise<void> {
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
}

// Ctrl-C or SIGTERM: stop the running child, drop its database, leave nothing behind.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void (async () => {
      current?.child?.kill("SIGKILL");
      if (current) await dropDatabase(current.db).catch(() => {});
      await admin.end({ timeout: 2 });
      process.exit(130);
    })();
  });
}

function databaseUrl(name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Run one child to completion; its last stdout line is its ChildResult. */
function runChild(spec: ScenarioSpec): Promise<{ result: ChildResult; stderr: string }> {
  return new Promise((resolve) => {
    const node = [process.execPath, ...CHILD_ARGS, JSON.stringify(spec)];
    // --callgrind: the measured child (not a load phase) runs under callgrind, which it zeroes and
    // dumps around its cost measure itself (see `costStart` in child.ts).
    const argv =
      spec.callgrindDir !== undefined && spec.phase !== "load"
        ? [
            "valgrind",
            "-q",
            "--tool=callgrind",
            `--callgrind-out-file=${spec.callgrindDir}/cg.%p`,
            // V8 without background compilation and GC threads, whose timing would move the count.
            process.execPath,
            "--predictable",
            ...node.slice(1),
          ]
        : node;
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (current) current.child = child;
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
      // The soak reports each quarter as it ends.
      if (spec.scenario === "soak") process.stderr.write(chunk);
    });
    const timer = setTimeout(
      () => child.kill("SIGKILL"),
      spec.scenario === "soak" ? SOAK_TIMEOUT_MS : CHILD_TIMEOUT_MS,
    );
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split("\n").at(-1) ?? "";
      let result: ChildResult;
      try {
        result = JSON.parse(line) as ChildResult;
      } catch {
        result = { ok: false, error: `child exited (${signal ?? code}) without a result` };
      }
      resolve({ result, stderr });
    });
  });
}

async function runOne(round: number, scenario: ScenarioName, system: SystemName): Promise<RunRecord> {
  const db = `bench_${process.pid}_${round}_${scenario.replace(/-/g, "_")}_${system}`;
  current = { db };
  const started = performance.now();
  try {
    await dropDatabase(db);
    await admin.unsafe(`create database "${db}"`);
    const spec: ScenarioSpec = {
      system,
      scenario,
      url: databaseUrl(db),
      sizes,
      analyze,
      anatomy: flags.anatomy,
      telemetryPaired: systems.includes("untraced"),
      callgrindDir,
    };
    if (hasLoadPhase(scenario)) {
      const load = await runChild({ ...spec, phase: "load" });
      if (!load.result.ok) {
        const error = `loading the backlog: ${load.result.error}`;
        return {
          round,
          scenario,
          system,
          ok: false,
          ms: performance.now() - started,
          error,
          stderrTail: tail(load.stderr),
        };
      }
    }
    const { result, stderr } = await runChild(spec);
    const ms = performance.now() - started;
    if (result.ok) return { round, scenario, system, ok: true, ms, metrics: result.metrics, verified: result.verified };
    return { round, scenario, system, ok: false, ms, error: result.error, stderrTail: tail(stderr) };
  } catch (error) {
    return { round, scenario, system, ok: false, ms: performance.now() - started, error: String(error) };
  } finally {
    await dropDatabase(db).catch((error) => console.error(`could not drop ${db}:`, error));
    current = undefined;
  }
}

function tail(text: string, lines = 20): string {
  return text.trim().split("\n").slice(-lines).join("\n");
}

function brief(record: RunRecord): string {
  if (!record.ok) return `FAILED: ${record.error}`;
  const m = record.metrics ?? {};
  const parts = Object.entries(m)
    .filter(([k]) => k !== "ms")
    .map(([k, v]) => `${k}=${v.toLocaleString("en-US", { maximumFractionDigits: k.startsWith("p") ? 1 : 0 })}`);
  return `${parts.join(" ")}  ✓ ${record.verified}`;
}

const startedAt = new Date();
const [{ version: serverVersion }] = (await admin`select version()`) as unknown as [{ version: string }];
const runs: RunRecord[] = [];
const total = rounds * scenarios.reduce((k, s) => k + systems.filter((sys) => !skipReason(sys, s)).length, 0);
console.error(
  `bench: ${rounds} round(s) × ${scenarios.length} scenario(s) × ${systems.length} system(s) = ${total} runs; ` +
    `jobs=${sizes.jobs} single=${sizes.single} latency=${sizes.latency} runs=${sizes.runs}`,
);
for (let round = 1; round <= rounds; round++) {
  // Each round starts one system later (A B C, B C A, C A B, …), so no system always runs first
  // or right after the same one: paired differences do not carry an order effect.
  const shift = (round - 1) % systems.length;
  const order = [...systems.slice(shift), ...systems.slice(0, shift)];
  for (const scenario of scenarios) {
    for (const system of order) {
      if (skipReason(system, scenario)) continue;
      const record = await runOne(round, scenario, system);
      runs.push(record);
      console.error(
        `[${runs.length}/${total}] round ${round} ${scenario.padEnd(16)} ${SYSTEM_LABELS[system].padEnd(15)} ` +
          `${(record.ms / 1000).toFixed(1).padStart(5)} s  ${brief(record)}`,
      );
      if (!record.ok && record.stderrTail) console.error(record.stderrTail.replace(/^/gm, "    | "));
    }
  }
}
await admin.end({ timeout: 5 });

const summary = summarize(runs);
const targets = checkTargets(summary, runs);
const failures = runs.filter((r) => !r.ok);
const skipped = scenarios.flatMap((s) =>
  systems.flatMap((sys) => {
    const why = skipReason(sys, s);
    return why ? [`${SYSTEM_LABELS[sys]} skips ${s} (${why})`] : [];
  }),
);
const command = `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim();
const markdown = [
  `# Benchmark results (${startedAt.toISOString()})`,
  "",
  `\`${command}\` — ${rounds} round(s), median (min–max) of verified rounds; every run in a fresh database and its own process.`,
  `Machine: ${os.cpus().length} cores, Node ${process.versions.node}, ${serverVersion.split(" on ")[0]}.` +
    (analyze ? "" : " Without ANALYZE: the planner had no statistics (correctness run)."),
  "",
  resultsTable(summary, systems, sizes),
  "",
  targetsTable(targets),
  "",
  ...(telemetryCostTable(runs) === "" ? [] : [telemetryCostTable(runs), ""]),
  ...(skipped.length > 0 ? [`Skipped: ${skipped.join("; ")}.`, ""] : []),
  ...(failures.length > 0
    ? ["## Failed runs", "", ...failures.map((f) => `- round ${f.round} ${f.scenario} ${f.system}: ${f.error}`), ""]
    : []),
].join("\n");

await mkdir(flags.out, { recursive: true });
await writeFile(
  path.join(flags.out, "latest.json"),
  `${JSON.stringify(
    {
      startedAt,
      command,
      machine: { cores: os.cpus().length, node: process.versions.node, server: serverVersion },
      rounds,
      sizes,
      systems,
      scenarios,
      runs,
      summary,
      targets,
    },
    null,
    2,
  )}\n`,
);
await writeFile(path.join(flags.out, "latest.md"), markdown);
console.log(`\n${markdown}`);
console.error(`written: ${path.join(flags.out, "latest.json")}, ${path.join(flags.out, "latest.md")}`);
if (failures.length > 0) {
  console.error(`\n${failures.length} run(s) FAILED verification — see above.`);
  process.exitCode = 1;
}
