// One benchmark run in a process of its own: argv[2] is a ScenarioSpec (JSON). Sets the system up
// in the (fresh, empty) database, runs the scenario, verifies it, and prints one ChildResult line.
// Setup, loading and ANALYZE are not timed. Anything else goes to stderr.
import { spawn } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { register } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import {
  type ChildResult,
  SCALE_CONCURRENCY,
  type ScenarioName,
  type ScenarioSpec,
  type Sizes,
  scaleProcesses,
} from "./scenarios.ts";
import type { BenchSystem } from "./system.ts";
import { BASELINE_BUILD_VARIABLE, workflowSteps } from "./system.ts";

const BATCH = 1_000;
const PARALLEL = 20;
const LATENCY_GAP_MS = 10;
const LATENCY_CONCURRENCY = 10;
const WORKFLOW_CONCURRENCY = 20;
const FLOW_KEYS = 100;
const FLOW_KEY_LIMIT = 2;
const FLOW_CONCURRENCY = 50;
const FAIR_CONCURRENCY = 10;
const FAIR_GAP_MS = 100;
// Both rounds claim in batches of this size (a fair claim's jobs go to the front of the worker's
// queue, so B's jobs do not wait behind a batch of A's).
const FAIR_CLAIM_BATCH = Number(process.env.BENCH_FAIR_CLAIM_BATCH ?? 100);
const TENANT_A = "0190f0a0-0000-7000-8000-0000000000aa";
const TENANT_B = "0190f0a0-0000-7000-8000-0000000000bb";
const TIMEOUT_MS = 300_000;
const SOAK_CONCURRENCY = 50;
/** The soak's producer stays at most this many jobs ahead of the worker (a steady, bounded backlog). */
const SOAK_AHEAD = 20_000;
/** runledger's tables, for the soak's vacuum when the server's autovacuum is off. */
const SOAK_TABLES = [
  "job_queue",
  "job_attempt_log",
  "job_event_log",
  "job_logs",
  "job_dead_letters",
  "workflow_runs",
  "workflow_steps",
  "workflow_step_dependencies",
  "workflow_run_mutations",
];
/** Runs enqueued per producer step, at most. */
const SOAK_RUNS_PER_STEP = 50;

const now = () => performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class VerificationError extends Error {}

function fail(message: string): never {
  throw new VerificationError(message);
}

/** Records every handler start by sequence number; resolves once every expected job has started. */
class Recorder {
  readonly startedAt: Float64Array;
  readonly #seen: Uint8Array;
  #distinct = 0;
  #duplicates = 0;
  #outOfRange = 0;
  #resolve: () => void = () => {};
  #reject: (error: Error) => void = () => {};
  /** Resolves when every job has started; rejects at once on a duplicate or unknown job. */
  readonly all: Promise<void>;

  constructor(readonly expected: number) {
    this.startedAt = new Float64Array(expected);
    this.#seen = new Uint8Array(expected);
    this.all = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.all.catch(() => {});
    if (expected === 0) this.#resolve();
  }

  readonly handler = (seq: number): void => {
    const at = now();
    if (!Number.isInteger(seq) || seq < 0 || seq >= this.expected) {
      this.#outOfRange++;
      this.#reject(new VerificationError(`a handler ran an unknown job (${seq})`));
      return;
    }
    if (this.#seen[seq] === 1) {
      this.#duplicates++;
      this.#reject(new VerificationError(`job ${seq} ran twice`));
      return;
    }
    this.#seen[seq] = 1;
    this.startedAt[seq] = at;
    if (++this.#distinct === this.expected) this.#resolve();
  };

  /** Every job ran, none twice, nothing unexpected. */
  verify(): string {
    if (this.#distinct !== this.expected || this.#duplicates > 0 || this.#outOfRange > 0) {
      fail(`ran ${this.#distinct} of ${this.expected} jobs, ${this.#duplicates} twice, ${this.#outOfRange} unknown`);
    }
    return `${this.expected} jobs ran exactly once`;
  }

  get progress(): string {
    return `${this.#distinct} of ${this.expected} ran`;
  }
}

async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new VerificationError(`timed out after ${ms} ms: ${what()}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

/** A bench/scale-worker.ts process: told "go" and "stop" on stdin, it prints "ready", then the jobs it ran. */
function startScaleWorker(url: string, system: string) {
  const compiled = import.meta.url.endsWith(".js");
  const file = fileURLToPath(new URL(compiled ? "./scale-worker.js" : "./scale-worker.ts", import.meta.url));
  const child = spawn(
    process.execPath,
    [...(compiled ? [] : ["--import", "tsx"]), file, url, system, String(SCALE_CONCURRENCY)],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  let out = "";
  const lines = new Promise<string[]>((resolve, reject) => {
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    child.once("error", reject);
    child.once("close", () => resolve(out.trim().split("\n")));
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", () => {
      if (out.includes("ready\n")) resolve();
    });
    void lines.then(() => reject(new Error("a scale worker exited before it was ready")));
  });
  ready.catch(() => {});
  return {
    ready,
    send: (line: string) => child.stdin.write(`${line}\n`),
    report: lines.then((all) => JSON.parse(all.at(-1) ?? "") as { ran: number[]; cpuUs: number }),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

/** Ask the callgrind this process runs under to zero its counters (`-z`) or dump them (`-d`); resolves once done. */
function callgrind(command: "-z" | "-d"): Promise<void> {
  return new Promise((resolve, reject) => {
    spawn("callgrind_control", [command, String(process.pid)], { stdio: "ignore" })
      .once("error", reject)
      .once("close", (code) =>
        code === 0 ? resolve() : reject(new Error(`callgrind_control ${command}: exit ${code}`)),
      );
  });
}

/** Dump the counters since `-z` and read their total: instructions executed per job. */
async function callgrindDump(dir: string, n: number): Promise<Record<string, number>> {
  await callgrind("-d");
  const file = path.join(dir, `cg.${process.pid}.1`);
  const summary = /^summary: (\d+)/m.exec(await readFile(file, "utf8"));
  if (summary === null) throw new Error(`no summary in ${file}`);
  await rm(file);
  return { instructionsPerJob: Number(summary[1]) / n };
}

class Run {
  constructor(
    readonly url: string,
    readonly system: BenchSystem,
    readonly check: postgres.Sql,
    readonly sizes: Sizes,
    readonly withStatistics: boolean,
    readonly anatomy: boolean,
    readonly callgrindDir: string | undefined,
  ) {}

  async walPosition(): Promise<{ lsn: string; commits: number }> {
    await this.check`create extension if not exists pg_walinspect`;
    const [row] = await this.check<{ lsn: string; commits: string }[]>`
      select pg_current_wal_lsn()::text as lsn, xact_commit::text as commits
      from pg_stat_database where datname = current_database()`;
    return { lsn: row!.lsn, commits: Number(row!.commits) };
  }

  /**
   * Per job: WAL records and bytes (without full-page images) that touch this database's
   * relations, by kind (heap inserts, HOT and other updates, deletes, btree entries), and
   * committed transactions. Other databases' WAL in the same range is left out by the block
   * reference's database oid; transaction records carry none, hence the commit counter.
   */
  async walAnatomy(before: { lsn: string; commits: number }, n: number): Promise<Record<string, number>> {
    const [stats] = await this.check<{ commits: string; oid: number }[]>`
      select xact_commit::text as commits, (select oid from pg_database where datname = current_database())::int as oid
      from pg_stat_database where datname = current_database()`;
    const rows = await this.check<{ rmgr: string; type: string; records: string; bytes: string }[]>`
      select resource_manager as rmgr, split_part(record_type, '+', 1) as type, count(*)::text as records,
        sum(record_length - fpi_length)::text as bytes
      from pg_get_wal_records_info_till_end_of_wal(${before.lsn}::pg_lsn)
      where block_ref like ${`%/${stats!.oid}/%`}
      group by 1, 2`;
    const per = (x: number) => x / n;
    const count = (rmgr: string, types: string[]) =>
      rows.filter((r) => r.rmgr === rmgr && types.includes(r.type)).reduce((k, r) => k + Number(r.records), 0);
    return {
      walRecordsPerJob: per(rows.reduce((k, r) => k + Number(r.records), 0)),
      walBytesPerJob: per(rows.reduce((k, r) => k + Number(r.bytes), 0)),
      heapInsertsPerJob: per(count("Heap", ["INSERT"]) + count("Heap2", ["MULTI_INSERT"])),
      hotUpdatesPerJob: per(count("Heap", ["HOT_UPDATE"])),
      updatesPerJob: per(count("Heap", ["UPDATE"])),
      deletesPerJob: per(count("Heap", ["DELETE"])),
      indexEntriesPerJob: per(count("Btree", ["INSERT_LEAF", "INSERT_UPPER", "INSERT_POST", "DEDUP"])),
      commitsPerJob: per(Number(stats!.commits) - before.commits),
    };
  }

  async pending(): Promise<number> {
    const [row] = await this.check.unsafe(this.system.pendingQuery);
    return Number(row?.n);
  }

  /** After the last handler ran: wait until the store has recorded every completion. */
  async drained(): Promise<void> {
    const deadline = now() + 60_000;
    let left = await this.pending();
    while (left !== 0) {
      if (now() > deadline) fail(`${left} jobs still pending 60 s after the last handler ran`);
      await sleep(2);
      left = await this.pending();
    }
  }

  async expectPending(n: number): Promise<string> {
    const left = await this.pending();
    if (left !== n) fail(`store holds ${left} pending jobs, expected ${n}`);
    return n === 0 ? "store ends with nothing pending" : `store holds ${n} pending jobs`;
  }

  async analyze(): Promise<void> {
    if (this.withStatistics) await this.check`analyze`;
  }

  /**
   * CPU time so far of the database's server processes (client backends and autovacuum workers
   * of this database, not this checker's own connection), by pid, from /proc (clock ticks).
   */
  async serverCpu(): Promise<Map<number, number>> {
    const rows = await this.check<{ pid: number }[]>`
      select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`;
    const ticks = new Map<number, number>();
    for (const { pid } of rows) {
      try {
        const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
        // utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
        ticks.set(pid, Number(fields[11]) + Number(fields[12]));
      } catch {
        // Gone meanwhile, or not readable (a server on another machine): not counted.
      }
    }
    return ticks;
  }

  async load(n: number): Promise<void> {
    for (let first = 0; first < n; first += BATCH) {
      await this.system.enqueueBatch(Array.from({ length: Math.min(BATCH, n - first) }, (_, k) => first + k));
    }
  }

  async enqueueBatch(): Promise<ChildResult> {
    const n = this.sizes.jobs;
    const cost = await this.costStart();
    const t0 = now();
    await this.load(n);
    const ms = now() - t0;
    const costs = await cost.end(n);
    return { ok: true, metrics: { jobsPerSec: (n / ms) * 1000, ms, ...costs }, verified: await this.expectPending(n) };
  }

  /**
   * Starts counting what the work until `end` costs per job: this process's CPU, the database's
   * server processes' CPU, and with `--anatomy` the WAL it wrote by kind.
   */
  async costStart(): Promise<{ end(n: number): Promise<Record<string, number>> }> {
    const walBefore = this.anatomy ? await this.walPosition() : undefined;
    if (this.callgrindDir !== undefined) await callgrind("-z");
    const serverBefore = await this.serverCpu();
    const cpuBefore = process.cpuUsage();
    return {
      end: async (n) => {
        const cpu = process.cpuUsage(cpuBefore);
        const instructions = this.callgrindDir === undefined ? {} : await callgrindDump(this.callgrindDir, n);
        const serverAfter = await this.serverCpu();
        // Backends that started meanwhile count whole; ticks are 10 ms (sysconf CLK_TCK 100).
        let serverTicks = 0;
        for (const [pid, ticks] of serverAfter) serverTicks += ticks - (serverBefore.get(pid) ?? 0);
        const anatomy = walBefore === undefined ? {} : await this.walAnatomy(walBefore, n);
        return {
          workerCpuUsPerJob: (cpu.user + cpu.system) / n,
          serverCpuUsPerJob: (serverTicks * 10_000) / n,
          ...instructions,
          ...anatomy,
        };
      },
    };
  }

  async enqueueSingle(lanes: number): Promise<ChildResult> {
    const n = this.sizes.single;
    let next = 0;
    const lane = async () => {
      while (next < n) await this.system.enqueueOne(next++);
    };
    const t0 = now();
    await Promise.all(Array.from({ length: lanes }, lane));
    const ms = now() - t0;
    return { ok: true, metrics: { jobsPerSec: (n / ms) * 1000, ms }, verified: await this.expectPending(n) };
  }

  /** The processing scenarios' backlog, in a process of its own (see `ScenarioSpec.phase`). */
  async loadBacklog(): Promise<ChildResult> {
    const n = this.sizes.jobs;
    await this.load(n);
    await this.analyze();
    return { ok: true, metrics: { loaded: n }, verified: await this.expectPending(n) };
  }

  async process(concurrency: number): Promise<ChildResult> {
    const n = this.sizes.jobs;
    await this.expectPending(n); // loaded (and analyzed) by the load phase
    const recorder = new Recorder(n);
    const startRssKb = process.memoryUsage().rss / 1024;
    const cost = await this.costStart();
    const t0 = now();
    await this.system.startWorker(concurrency, recorder.handler);
    await within(recorder.all, TIMEOUT_MS, () => recorder.progress);
    await this.drained();
    const ms = now() - t0;
    // Counted before the worker stops: the backends are still there to read.
    const costs = await cost.end(n);
    await this.system.stopWorker();
    const verified = `${recorder.verify()}; ${await this.expectPending(0)}`;
    const maxRssKb = process.resourceUsage().maxRSS;
    return { ok: true, metrics: { jobsPerSec: (n / ms) * 1000, ms, maxRssKb, startRssKb, ...costs }, verified };
  }

  async latency(): Promise<ChildResult> {
    const n = this.sizes.latency;
    await this.analyze();
    const recorder = new Recorder(n);
    await this.system.startWorker(LATENCY_CONCURRENCY, recorder.handler);
    await sleep(1_000); // let the worker settle into idle
    const enqueuedAt = new Float64Array(n);
    const base = now();
    for (let i = 0; i < n; i++) {
      const wait = base + i * LATENCY_GAP_MS - now();
      if (wait > 0) await sleep(wait);
      enqueuedAt[i] = now();
      await this.system.enqueueOne(i);
    }
    await within(recorder.all, TIMEOUT_MS, () => recorder.progress);
    await this.drained();
    await this.system.stopWorker();
    const verified = `${recorder.verify()}; ${await this.expectPending(0)}`;
    const latencies = Float64Array.from(recorder.startedAt, (at, i) => at - enqueuedAt[i]!).sort();
    return {
      ok: true,
      metrics: {
        p50: percentile(latencies, 50),
        p95: percentile(latencies, 95),
        p99: percentile(latencies, 99),
        max: latencies[latencies.length - 1]!,
      },
      verified,
    };
  }

  async workflow(): Promise<ChildResult> {
    const workflow = this.system.workflow ?? fail(`${this.system.name} has no workflow support`);
    const runs = this.sizes.runs;
    const steps = workflowSteps();
    const index = new Map(steps.map((step, k) => [step, k]));
    const recorder = new Recorder(runs * steps.length);
    await this.analyze();
    await workflow.startWorker(WORKFLOW_CONCURRENCY, (run, step) =>
      recorder.handler(run * steps.length + (index.get(step) ?? Number.NaN)),
    );
    await sleep(500);
    const enqueuedAt = new Float64Array(runs);
    const t0 = now();
    for (let run = 0; run < runs; run++) {
      enqueuedAt[run] = now();
      await workflow.enqueueRun(run);
    }
    await within(recorder.all, TIMEOUT_MS, () => recorder.progress);
    await this.drained();
    const ms = now() - t0;
    await this.system.stopWorker();
    const verified = `${recorder.verify()}; ${this.checkOrder(runs, steps.length, recorder)}; ${await this.expectPending(0)}`;
    const join = steps.length - 1;
    const completion = Float64Array.from(
      { length: runs },
      (_, run) => recorder.startedAt[run * steps.length + join]! - enqueuedAt[run]!,
    ).sort();
    return {
      ok: true,
      metrics: {
        stepsPerSec: ((runs * steps.length) / ms) * 1000,
        ms,
        runP50Ms: percentile(completion, 50),
        runMaxMs: completion[completion.length - 1]!,
      },
      verified,
    };
  }

  /**
   * `processes` worker processes (bench/scale-worker.ts, `SCALE_CONCURRENCY` handlers each) work
   * off the queued backlog: timed from the moment all are ready and told to start until the store
   * has recorded the last completion (polled every 20 ms). Each reports the jobs it ran at the end.
   */
  async scale(processes: number): Promise<ChildResult> {
    const n = this.sizes.jobs;
    await this.expectPending(n);
    const workers = Array.from({ length: processes }, () => startScaleWorker(this.url, this.system.name));
    try {
      await within(Promise.all(workers.map((w) => w.ready)), 60_000, () => "the worker processes to start");
      const serverBefore = await this.serverCpu();
      const t0 = now();
      for (const worker of workers) worker.send("go");
      const deadline = t0 + TIMEOUT_MS;
      let left = await this.pending();
      while (left !== 0) {
        if (now() > deadline) fail(`${left} jobs still pending after ${TIMEOUT_MS} ms`);
        await sleep(20);
        left = await this.pending();
      }
      const ms = now() - t0;
      const serverAfter = await this.serverCpu();
      for (const worker of workers) worker.send("stop");
      const reports = await within(Promise.all(workers.map((w) => w.report)), 60_000, () => "the workers to stop");
      const recorder = new Recorder(n);
      for (const { ran } of reports) for (const seq of ran) recorder.handler(seq);
      const verified = `${recorder.verify()} across ${processes} processes; ${await this.expectPending(0)}`;
      let serverTicks = 0;
      for (const [pid, ticks] of serverAfter) serverTicks += ticks - (serverBefore.get(pid) ?? 0);
      return {
        ok: true,
        metrics: {
          jobsPerSec: (n / ms) * 1000,
          ms,
          processes,
          // The smallest share of the jobs one process ran, in percent (an even split is 100 / processes).
          minSharePct: (Math.min(...reports.map((r) => r.ran.length)) / n) * 100,
          workerCpuUsPerJob: reports.reduce((k, r) => k + r.cpuUs, 0) / n,
          serverCpuUsPerJob: (serverTicks * 10_000) / n,
        },
        verified,
      };
    } finally {
      for (const worker of workers) worker.kill();
    }
  }

  /** In every run the root started before each fan step, and the join after all of them. */
  checkOrder(runs: number, width: number, recorder: Recorder): string {
    for (let run = 0; run < runs; run++) {
      const at = recorder.startedAt.subarray(run * width, (run + 1) * width);
      const root = at[0]!;
      const join = at[width - 1]!;
      for (let k = 1; k < width - 1; k++) {
        if (!(root <= at[k]! && at[k]! <= join)) fail(`run ${run}: step ${k} started outside root…join`);
      }
    }
    return "every run ran root → fans → join in order";
  }

  /**
   * `flow-keys`: N jobs over 100 concurrency keys (round-robin), each key limited to 2 running,
   * one worker at concurrency 50. The database is sampled while it drains: no key may ever have
   * more than 2 jobs LEASED.
   */
  async flowKeys(): Promise<ChildResult> {
    const flow = this.system.flow ?? fail(`${this.system.name} has no flow control`);
    const n = this.sizes.jobs;
    await flow.limitKeys("key-", FLOW_KEY_LIMIT);
    for (let first = 0; first < n; first += BATCH) {
      const seqs = Array.from({ length: Math.min(BATCH, n - first) }, (_, k) => first + k);
      await flow.enqueueKeyedBatch(seqs, (i) => `key-${i % FLOW_KEYS}`);
    }
    await this.analyze();
    const recorder = new Recorder(n);
    let maxRunning = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [row] = await this.check<{ n: number | null }[]>`
          select max(n)::int as n from (select count(*) as n from runledger.job_queue
            where status = 'LEASED' group by concurrency_key) k`;
        maxRunning = Math.max(maxRunning, row?.n ?? 0);
        await sleep(5);
      }
    })();
    const t0 = now();
    await flow.startWorker(FLOW_CONCURRENCY, recorder.handler, false);
    await within(recorder.all, TIMEOUT_MS, () => recorder.progress);
    await this.drained();
    const ms = now() - t0;
    sampling = false;
    await sampler;
    await this.system.stopWorker();
    if (maxRunning > FLOW_KEY_LIMIT) fail(`a key had ${maxRunning} jobs running, limit ${FLOW_KEY_LIMIT}`);
    const verified = `${recorder.verify()}; at most ${maxRunning} running per key (sampled); ${await this.expectPending(0)}`;
    return { ok: true, metrics: { jobsPerSec: (n / ms) * 1000, ms, maxRunningPerKey: maxRunning }, verified };
  }

  /**
   * `fair`: tenant A has N jobs queued; while they drain, tenant B enqueues one job every 100 ms.
   * B's pickup latency (handler start minus enqueue call), with strict claim order and then with
   * `claimFairness: "organization"`, on the same database (the first round leaves nothing pending).
   */
  async fair(): Promise<ChildResult> {
    const strict = await this.fairRound(false, 0);
    const fair = await this.fairRound(true, 10_000_000);
    return {
      ok: true,
      metrics: {
        fairP50: fair.p50,
        fairP99: fair.p99,
        fairAJobsPerSec: fair.aJobsPerSec,
        strictP50: strict.p50,
        strictP99: strict.p99,
        strictAJobsPerSec: strict.aJobsPerSec,
        bJobs: fair.bJobs + strict.bJobs,
      },
      verified: `${strict.verified}; ${fair.verified}; ${await this.expectPending(0)}`,
    };
  }

  async fairRound(
    fairClaims: boolean,
    base: number,
  ): Promise<{ p50: number; p99: number; aJobsPerSec: number; bJobs: number; verified: string }> {
    const flow = this.system.flow ?? fail(`${this.system.name} has no flow control`);
    const a = this.sizes.jobs;
    for (let first = 0; first < a; first += BATCH) {
      const seqs = Array.from({ length: Math.min(BATCH, a - first) }, (_, k) => base + first + k);
      await flow.enqueueBatchFor(TENANT_A, seqs);
    }
    await this.analyze();
    const aSeen = new Uint8Array(a);
    let aStarted = 0;
    let aDone: () => void = () => {};
    const allA = new Promise<void>((resolve) => {
      aDone = resolve;
    });
    const bEnqueued = new Map<number, number>();
    const bStarted = new Map<number, number>();
    let problem: string | undefined;
    const handler = (seq: number) => {
      const at = now();
      const i = seq - base;
      if (i >= 0 && i < a) {
        if (aSeen[i] === 1) problem = `job ${seq} ran twice`;
        aSeen[i] = 1;
        if (++aStarted === a) aDone();
      } else if (bEnqueued.has(seq) || i >= a) {
        if (bStarted.has(seq)) problem = `job ${seq} ran twice`;
        bStarted.set(seq, at);
      } else problem = `a handler ran an unknown job (${seq})`;
    };
    const t0 = now();
    await flow.startWorker(FAIR_CONCURRENCY, handler, fairClaims, FAIR_CLAIM_BATCH);
    let next = base + a;
    let aFinishedAt = 0;
    const bLoop = (async () => {
      while (aStarted < a) {
        const seq = next++;
        bEnqueued.set(seq, now());
        await flow.enqueueOneFor(TENANT_B, seq);
        await sleep(Math.max(0, bEnqueued.get(seq)! + FAIR_GAP_MS - now()));
      }
    })();
    await within(allA, TIMEOUT_MS, () => `${aStarted} of ${a} of tenant A ran`);
    aFinishedAt = now();
    await bLoop;
    const bAll = async () => {
      while (bStarted.size < bEnqueued.size) await sleep(5);
    };
    await within(bAll(), TIMEOUT_MS, () => `${bStarted.size} of ${bEnqueued.size} of tenant B ran`);
    await this.drained();
    await this.system.stopWorker();
    if (problem !== undefined) fail(problem);
    if (aStarted !== a) fail(`ran ${aStarted} of ${a} tenant A jobs`);
    const latencies = Float64Array.from(bEnqueued, ([seq, at]) => bStarted.get(seq)! - at).sort();
    return {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      aJobsPerSec: (a / (aFinishedAt - t0)) * 1000,
      bJobs: latencies.length,
      verified: `${fairClaims ? "fair" : "strict"}: ${a} A and ${latencies.length} B jobs ran exactly once`,
    };
  }

  /** Size of runledger's tables with their indexes and TOAST, dead tuples, and job rows. */
  async footprint(): Promise<{ bytes: number; dead: number; jobRows: number }> {
    const [row] = await this.check<{ bytes: string; dead: string; jobs: string }[]>`
      select coalesce(sum(pg_total_relation_size(c.oid)), 0)::text as bytes,
        coalesce(sum(s.n_dead_tup), 0)::text as dead,
        (select count(*) from runledger.job_queue)::text as jobs
      from pg_class c join pg_namespace ns on ns.oid = c.relnamespace
      left join pg_stat_user_tables s on s.relid = c.oid
      where ns.nspname = 'runledger' and c.relkind in ('r', 'p')`;
    return { bytes: Number(row!.bytes), dead: Number(row!.dead), jobRows: Number(row!.jobs) };
  }

  /**
   * The retention soak: `soakJobs` jobs — half plain, half steps of 1→20→1 runs, one in ten failing
   * its first attempt — enqueued continuously (never more than SOAK_AHEAD ahead of the worker) and
   * processed while the sweep deletes what finished more than `soakRetentionSeconds` ago. At each
   * quarter of the successes: jobs/s over that quarter, the tables' size and their dead tuples.
   */
  async soak(): Promise<ChildResult> {
    const soak = this.system.soak ?? fail(`${this.system.name} has no soak support`);
    const width = workflowSteps().length;
    const n = this.sizes.soakJobs;
    const plain = Math.floor(n / 2 / BATCH) * BATCH;
    const runs = Math.ceil((n - plain) / width);
    const total = plain + runs * width;
    const succeeded = new Uint8Array(total);
    const failedOnce = new Uint8Array(total);
    let successes = 0;
    let failures = 0;
    let problem: string | undefined;
    await this.analyze();
    await soak.startWorker(SOAK_CONCURRENCY, this.sizes.soakRetentionSeconds, (key, attempt) => {
      if (!Number.isInteger(key) || key < 0 || key >= total) {
        problem ??= `a handler ran an unknown job (${key})`;
        return false;
      }
      if (succeeded[key] === 1) {
        problem ??= `job ${key} ran again after it succeeded (attempt ${attempt})`;
        return false;
      }
      if (key % 10 === 0 && failedOnce[key] === 0) {
        failedOnce[key] = 1;
        failures++;
        return true;
      }
      succeeded[key] = 1;
      successes++;
      return false;
    });

    // The plateau needs vacuum. Where the server runs with autovacuum off (as a benchmark box
    // may), vacuum runledger's tables every 30 s in its place, and say so.
    const [settings] = await this.check<{ on: boolean }[]>`select current_setting('autovacuum') = 'on' as on`;
    let vacuums = 0;
    let soakDone = false;
    const vacuumer = settings?.on
      ? Promise.resolve()
      : (async () => {
          console.error("soak: autovacuum is off on this server; vacuuming runledger's tables every 30 s instead");
          while (!soakDone) {
            await this.check.unsafe(`vacuum ${SOAK_TABLES.map((t) => `runledger.${t}`).join(", ")}`);
            vacuums++;
            for (let waited = 0; waited < 30_000 && !soakDone; waited += 500) await sleep(500);
          }
        })();
    const t0 = now();
    let enqueued = 0;
    const producer = (async () => {
      let nextPlain = 0;
      let nextRun = 0;
      while (nextPlain < plain || nextRun < runs) {
        if (problem !== undefined) return;
        if (enqueued - successes > SOAK_AHEAD) {
          await sleep(20);
          continue;
        }
        if (nextPlain < plain) {
          const keys = Array.from({ length: Math.min(BATCH, plain - nextPlain) }, (_, k) => nextPlain + k);
          await soak.enqueueJobs(keys);
          nextPlain += keys.length;
          enqueued += keys.length;
        }
        // Runs keep pace with the plain jobs, so both kinds flow through every quarter.
        const due = plain === 0 ? runs : Math.ceil((runs * nextPlain) / plain);
        for (let k = 0; k < SOAK_RUNS_PER_STEP && nextRun < Math.min(runs, due); k++, nextRun++) {
          await soak.enqueueRun(plain + nextRun * width);
          enqueued += width;
        }
      }
    })();

    const quarters: { jobsPerSec: number; sizeMb: number; dead: number; jobRows: number; at: number }[] = [];
    let last = t0;
    const deadline = t0 + Math.max(TIMEOUT_MS, total * 5);
    while (quarters.length < 4) {
      if (problem !== undefined) fail(problem);
      if (now() > deadline) fail(`timed out: ${successes} of ${total} succeeded`);
      const boundary = Math.ceil(((quarters.length + 1) * total) / 4);
      if (successes < boundary) {
        await sleep(100);
        continue;
      }
      const at = now();
      const { bytes, dead, jobRows } = await this.footprint();
      const q = {
        jobsPerSec: ((total / 4) * 1000) / (at - last),
        sizeMb: bytes / 1024 / 1024,
        dead,
        jobRows,
        at: (at - t0) / 1000,
      };
      quarters.push(q);
      last = at;
      console.error(
        `soak q${quarters.length}: ${boundary.toLocaleString("en-US")} of ${total.toLocaleString("en-US")} jobs at ` +
          `${q.at.toFixed(0)} s; ${q.jobsPerSec.toFixed(0)} jobs/s; runledger tables + indexes ${q.sizeMb.toFixed(1)} MB; ` +
          `dead tuples ${dead.toLocaleString("en-US")}; job rows ${jobRows.toLocaleString("en-US")}; ` +
          `swept rows ${soak.sweptRows.toLocaleString("en-US")}`,
      );
    }
    await producer;
    await this.drained();
    soakDone = true;
    await vacuumer;
    await this.system.stopWorker();
    if (problem !== undefined) fail(problem);
    const expectedFailures = Math.ceil(total / 10);
    if (successes !== total || failures !== expectedFailures) {
      fail(`${successes} of ${total} succeeded, ${failures} of ${expectedFailures} failed once`);
    }
    const metrics: Record<string, number> = {
      jobs: total,
      seconds: (now() - t0) / 1000,
      sweptRows: soak.sweptRows,
      vacuums,
      sizeRatio: quarters[3]!.sizeMb / quarters[1]!.sizeMb,
      throughputRatio: quarters[3]!.jobsPerSec / quarters[0]!.jobsPerSec,
    };
    quarters.forEach((q, i) => {
      metrics[`q${i + 1}JobsPerSec`] = q.jobsPerSec;
      metrics[`q${i + 1}SizeMb`] = q.sizeMb;
      metrics[`q${i + 1}DeadTuples`] = q.dead;
      metrics[`q${i + 1}JobRows`] = q.jobRows;
    });
    return {
      ok: true,
      metrics,
      verified:
        `${total} jobs (${plain} plain, ${runs} runs of ${width} steps) succeeded exactly once, ` +
        `${failures} failed exactly once first; ${await this.expectPending(0)}`,
    };
  }

  run(scenario: ScenarioName): Promise<ChildResult> {
    switch (scenario) {
      case "enqueue-batch":
        return this.enqueueBatch();
      case "enqueue-single":
        return this.enqueueSingle(1);
      case "enqueue-parallel":
        return this.enqueueSingle(PARALLEL);
      case "process-c10":
        return this.process(10);
      case "process-c50":
        return this.process(50);
      case "latency":
        return this.latency();
      case "workflow":
        return this.workflow();
      case "flow-keys":
        return this.flowKeys();
      case "fair":
        return this.fair();
      case "dashboard":
        throw new Error("the dashboard scenario runs through bench/dashboard.ts");
      case "scale-p1":
      case "scale-p2":
      case "scale-p4":
        return this.scale(scaleProcesses(scenario)!);
      case "soak":
        return this.soak();
    }
  }
}

/** Load only the system under test, so its process (and peak RSS) carries no other library. */
async function makeSystem(name: string, url: string): Promise<BenchSystem> {
  switch (name) {
    case "runledger":
      return (await import("./systems/runledger.ts")).runledgerSystem(url);
    case "graphile":
      return (await import("./systems/graphile.ts")).graphileSystem(url);
    case "pgboss":
      return (await import("./systems/pgboss.ts")).pgbossSystem(url);
    case "raw":
      return (await import("./systems/raw.ts")).rawSystem(url);
    case "rawledger":
      return (await import("./systems/raw-ledger.ts")).rawLedgerSystem(url, "leased");
    case "rawledger-hot":
      return (await import("./systems/raw-ledger.ts")).rawLedgerSystem(url, "hot");
    case "rawledger-min":
      return (await import("./systems/raw-ledger.ts")).rawLedgerSystem(url, "minimal");
    case "unprepared": {
      const system = (await import("./systems/runledger.ts")).runledgerSystem(url, { pooled: true });
      return { ...system, name: "unprepared" };
    }
    case "untraced":
    case "otel": {
      // runledger itself, loaded after `loadThroughHook` or `registerOtelSdk` ran.
      const system = (await import("./systems/runledger.ts")).runledgerSystem(url);
      return { ...system, name };
    }
    case "baseline": {
      // Another build's own adapter, so it runs that build's code with its own migrations.
      const build = process.env[BASELINE_BUILD_VARIABLE] ?? "";
      const adapter = path.resolve(build, "bench/systems/runledger.js");
      const system = ((await import(adapter)) as typeof import("./systems/runledger.ts")).runledgerSystem(url);
      return { ...system, name: "baseline" };
    }
    default:
      throw new Error(`unknown system ${name}`);
  }
}

/**
 * `RUNLEDGER_BENCH_OTEL=1`: register an OpenTelemetry SDK (in-memory span exporter behind a simple
 * processor, emptied every second; in-memory metric exporter read every 10 s) before the system
 * loads, to measure what tracing and metrics cost per job. Only runledger (not `baseline`, whose
 * build predates its instrumentation) reports to it.
 */
async function registerOtelSdk(): Promise<void> {
  const { context, metrics, trace } = await import("@opentelemetry/api");
  const { AsyncLocalStorageContextManager } = await import("@opentelemetry/context-async-hooks");
  const sdkTrace = await import("@opentelemetry/sdk-trace-base");
  const sdkMetrics = await import("@opentelemetry/sdk-metrics");
  const spans = new sdkTrace.InMemorySpanExporter();
  setInterval(() => spans.reset(), 1000).unref();
  trace.setGlobalTracerProvider(
    new sdkTrace.BasicTracerProvider({ spanProcessors: [new sdkTrace.SimpleSpanProcessor(spans)] }),
  );
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const reader = new sdkMetrics.PeriodicExportingMetricReader({
    exporter: new sdkMetrics.InMemoryMetricExporter(sdkMetrics.AggregationTemporality.DELTA),
    exportIntervalMillis: 10_000,
  });
  // The peers bring a newer copy of the API than the SDK's: same interface, different type identity.
  const provider = new sdkMetrics.MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(provider as unknown as Parameters<typeof metrics.setGlobalMeterProvider>[0]);
}

/**
 * The `untraced` system: before runledger loads, a module hook makes its `activeTracer` and
 * `activeMeter` (src/store/telemetry.ts) return "none" at once instead of asking the API, which
 * leaves what the code costs without its instrumentation: every other telemetry step is skipped
 * on their answer. Fails the run if the functions are not found. The other runledger variants of
 * such a run load through a hook that changes nothing (`patch` false), so all of them carry the
 * hooks thread alike.
 */
function loadThroughHook(patch: boolean): void {
  const hooks = `
    export async function load(url, context, nextLoad) {
      const loaded = await nextLoad(url, context);
      const file = new URL(url).pathname;
      if (!${patch} || (!file.endsWith("/src/store/telemetry.js") && !file.endsWith("/src/store/telemetry.ts"))) {
        return loaded;
      }
      let source = String(loaded.source);
      for (const name of ["activeTracer", "activeMeter"]) {
        const head = source.indexOf("export function " + name + "(");
        const body = head === -1 ? -1 : source.indexOf("{", head) + 1;
        if (body === 0) throw new Error("untraced: " + name + " not found in " + url);
        source = source.slice(0, body) + " return undefined;" + source.slice(body);
      }
      return { ...loaded, source };
    }`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
}

const spec = JSON.parse(process.argv[2] ?? "{}") as ScenarioSpec;
const runledgerVariant = spec.system === "runledger" || spec.system === "untraced" || spec.system === "otel";
if (spec.system === "untraced" || (spec.telemetryPaired === true && runledgerVariant)) {
  loadThroughHook(spec.system === "untraced");
}
if ((process.env.RUNLEDGER_BENCH_OTEL === "1" && spec.system !== "untraced") || spec.system === "otel")
  await registerOtelSdk();
const system = await makeSystem(spec.system, spec.url);
const check = postgres(spec.url, { max: 1, onnotice: () => {} });
let result: ChildResult;
try {
  await system.setup();
  const run = new Run(
    spec.url,
    system,
    check,
    spec.sizes,
    spec.analyze !== false,
    spec.anatomy === true,
    spec.callgrindDir,
  );
  result =
    spec.scenario === "dashboard"
      ? await (await import("./dashboard.ts")).dashboardScenario(spec)
      : spec.phase === "load"
        ? await run.loadBacklog()
        : await run.run(spec.scenario);
} catch (error) {
  const message = error instanceof VerificationError ? `verification failed: ${error.message}` : String(error);
  if (!(error instanceof VerificationError)) console.error(error);
  result = { ok: false, error: message };
  // Stop a worker that may still be running, so closing the pool does not pull connections from under it.
  await within(system.stopWorker(), 15_000, () => "stopping the worker").catch((e) => console.error(e));
}
// The result first: whatever happens while closing cannot lose it.
process.stdout.write(`${JSON.stringify(result)}\n`);
await within(Promise.all([system.close(), check.end({ timeout: 5 })]), 15_000, () => "closing connections").catch(
  (error) => console.error(error),
);
process.exit(result.ok ? 0 : 1);
