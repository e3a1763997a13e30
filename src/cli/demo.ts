import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ALL_ORGANIZATIONS, type JobContext, MAX_WORKFLOW_STEPS, type WorkflowRunStatus } from "../core/index.ts";
import { JobCatalog, JobsConfig, Supervisor } from "../runtime/index.ts";
import {
  createDb,
  createEmbeddedDb,
  enqueueJobs,
  enqueueWorkflowRun,
  getJobById,
  getWorkflowRunById,
  inspectSchema,
  listWorkflowSteps,
  migrate,
  type RunledgerDb,
} from "../store/index.ts";
import { COMMON_OPTIONS, type Command, redactUrl } from "./command.ts";
import { BATCH_SIZE, type Live, Progress, seconds, summaryLines } from "./demo-view.ts";

/*
 * `runledger demo`: a small workflow and a batch of jobs against `DATABASE_URL` or, without it,
 * an embedded PGlite database in `.runledger/demo-db`, with live progress. Only public APIs.
 */
const DEMO_DATA_DIR = join(".runledger", "demo-db");
const DEMO_TIMEOUT_MS = 45_000;
const TERMINAL_RUN: readonly WorkflowRunStatus[] = ["SUCCEEDED", "COMPLETED_WITH_ERRORS", "CANCELED"];

const out = process.stdout;
const tty = out.isTTY === true && process.env.TERM !== "dumb";
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Only one process may open a PGlite data directory: hold a pid lock file next to it. */
function lockDataDir(dir: string): () => void {
  const lockFile = `${dir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: "wx" });
      return () => rmSync(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = Number(readFileSync(lockFile, "utf8"));
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new Error(`another process (pid ${pid}) is using ${dir}; wait for it or set DATABASE_URL`);
      }
      rmSync(lockFile, { force: true }); // left behind by a process that died
    }
  }
  throw new Error(`could not lock ${dir}`);
}

/** The database a URL names (postgres.js defaults it to the user's name), for saying where the demo writes. */
function databaseName(url: string): string {
  try {
    const parsed = new URL(url);
    return decodeURIComponent(parsed.pathname.slice(1)) || decodeURIComponent(parsed.username) || "postgres";
  } catch {
    return "?";
  }
}

interface DemoDb {
  db: RunledgerDb;
  /** Where the demo writes, fit to print (no password). */
  label: string;
  /**
   * Whether the embedded data directory did not exist before (for a server, decided after
   * connecting: whether runledger's schema did not exist before).
   */
  firstRun: boolean | undefined;
  release: () => void;
}

async function openDemoDb(url: string | undefined): Promise<DemoDb> {
  if (url !== undefined && url !== "") {
    const db = createDb(url, { max: 4, applicationName: "runledger-demo" });
    return {
      db,
      label: `PostgreSQL database "${databaseName(url)}" at ${redactUrl(url)}`,
      firstRun: undefined,
      release: () => {},
    };
  }
  const firstRun = !existsSync(DEMO_DATA_DIR) || readdirSync(DEMO_DATA_DIR).length === 0;
  out.write(
    firstRun
      ? `first run: creating the embedded database in ${DEMO_DATA_DIR} (a few seconds)\n`
      : `opening the embedded database in ${DEMO_DATA_DIR}\n`,
  );
  mkdirSync(DEMO_DATA_DIR, { recursive: true });
  const release = lockDataDir(DEMO_DATA_DIR);
  try {
    return {
      db: await createEmbeddedDb(DEMO_DATA_DIR),
      label: `embedded PGlite in ${DEMO_DATA_DIR}`,
      firstRun,
      release,
    };
  } catch (error) {
    release();
    if ((error as { code?: string }).code === "ERR_MODULE_NOT_FOUND") {
      throw new Error("The embedded database needs @electric-sql/pglite; install it or set DATABASE_URL.");
    }
    throw error;
  }
}

/** Handlers that pretend to work: they sleep a little and report progress. */
function demoCatalog() {
  const work = (steps: number, stepMs: number) => async (_payload: unknown, context: JobContext) => {
    for (let done = 1; done <= steps && !context.signal.aborted; done++) {
      await sleep(stepMs, context.signal);
      await context.progress({ progressDone: done, progressTotal: steps });
    }
  };
  return new JobCatalog({ maxAttempts: 3, timeoutSeconds: 30 })
    .job("profiles.crawl", work(5, 160))
    .job("profiles.classify", work(4, 150))
    .job("profiles.score", work(3, 220))
    .job("profiles.persist", work(2, 150))
    .job("thumbnails.render", async (_payload, context) => {
      await sleep(40 + Math.floor(Math.random() * 80), context.signal);
    });
}

/** Every step of the demo's run (a run holds at most `MAX_WORKFLOW_STEPS`: one page). */
async function stepsOf(db: RunledgerDb, workflowRunId: string) {
  return (await listWorkflowSteps(db, { workflowRunId, scope: ALL_ORGANIZATIONS, limit: MAX_WORKFLOW_STEPS })).items;
}

async function refresh(db: RunledgerDb, live: Live): Promise<void> {
  // Run status first: a run seen as finished then has every step read after it finished too, so
  // the last step's transition is printed before the loop stops.
  live.runStatus = (await getWorkflowRunById(db, live.runId, ALL_ORGANIZATIONS))?.status;
  live.steps = await stepsOf(db, live.runId);
  for (const step of live.steps) {
    if (step.jobId === null || step.status !== "RUNNING") continue;
    const job = await getJobById(db, step.jobId, ALL_ORGANIZATIONS);
    if (job !== null) live.progress.set(step.jobId, { done: job.progressDone, total: job.progressTotal });
  }
}

async function demo(databaseUrl: string | undefined): Promise<number> {
  const began = Date.now();
  const { db, label, firstRun, release } = await openDemoDb(databaseUrl);
  const stop = new AbortController();
  const interrupt = () => stop.abort();
  process.once("SIGINT", interrupt);
  process.once("SIGTERM", interrupt);
  let supervisor: Supervisor | undefined;
  try {
    out.write(`runledger demo writes to ${label} (opened in ${seconds(Date.now() - began)})\n`);
    const before = await inspectSchema(db);
    const migrated = await migrate(db);
    if (firstRun === undefined && before.state === "uninitialized") {
      out.write(`first run: created runledger's schema (${migrated.bundled} migrations)\n`);
    } else out.write(`schema current (${migrated.bundled} migrations)\n`);
    const catalog = demoCatalog();
    await catalog.syncDefinitions(db);

    const profileId = `p_${Date.now().toString(36)}`;
    const run = catalog
      .workflow("profiles.research", { source: "demo" })
      .job("crawl", "profiles.crawl", { profile_id: profileId })
      .job("classify", "profiles.classify", { profile_id: profileId })
      .afterSuccess("classify", ["crawl"])
      .job("score", "profiles.score", { profile_id: profileId })
      .afterSuccess("score", ["crawl"])
      .job("persist", "profiles.persist", { profile_id: profileId })
      .afterSuccess("persist", ["classify", "score"])
      .build();
    const workflowRun = await enqueueWorkflowRun(db, run);
    const batch = await enqueueJobs(
      db,
      Array.from({ length: BATCH_SIZE }, (_, i) => ({ jobType: "thumbnails.render", payload: { image: i + 1 } })),
    );
    const batchIds = new Set(batch.map((job) => job.id));
    out.write(`enqueued workflow ${workflowRun.id} (crawl → classify + score → persist) and ${BATCH_SIZE} jobs\n`);

    const live: Live = {
      runId: workflowRun.id,
      startedAt: Date.now(),
      batchDone: 0,
      batchFailed: 0,
      steps: [],
      progress: new Map(),
      runStatus: undefined,
    };
    const config = JobsConfig.from({ workerId: `demo-${process.pid}`, pollIntervalMs: 100, maxGlobalConcurrency: 8 });
    supervisor = Supervisor.builder(db, config).withCatalog(catalog).build();
    supervisor.on("job:succeeded", (e) => {
      if (batchIds.has(e.jobId)) live.batchDone++;
    });
    supervisor.on("job:dead_lettered", (e) => {
      if (batchIds.has(e.jobId)) live.batchFailed++;
    });
    supervisor.start();

    const view = new Progress(out, tty);
    if (tty) out.write("\x1b[?25l");
    const deadline = live.startedAt + DEMO_TIMEOUT_MS;
    for (;;) {
      await refresh(db, live);
      view.render(live);
      const runDone = live.runStatus !== undefined && TERMINAL_RUN.includes(live.runStatus);
      if ((runDone && live.batchDone + live.batchFailed >= BATCH_SIZE) || stop.signal.aborted) break;
      if (Date.now() > deadline) {
        process.stderr.write(`the demo did not finish within ${seconds(DEMO_TIMEOUT_MS)}\n`);
        break;
      }
      await sleep(tty ? 120 : 200, stop.signal);
    }
    if (tty) out.write("\x1b[?25h");
    await supervisor.shutdown(5000);
    supervisor = undefined;

    const finalRun = (await getWorkflowRunById(db, workflowRun.id, ALL_ORGANIZATIONS))!;
    live.steps = await stepsOf(db, workflowRun.id);
    const columns = tty ? (out.columns ?? 80) : Number.POSITIVE_INFINITY;
    for (const line of summaryLines(live, finalRun.startedAt, columns)) out.write(`${line}\n`);
    const took =
      finalRun.finishedAt === null ? "-" : seconds(finalRun.finishedAt.getTime() - finalRun.startedAt.getTime());
    out.write(`\nworkflow ${finalRun.id}: ${finalRun.status} in ${took}\n`);
    out.write(`jobs: ${live.batchDone}/${BATCH_SIZE} succeeded, ${live.batchFailed} dead-lettered\n`);
    out.write(`done in ${seconds(Date.now() - began)}\n`);
    return finalRun.status === "SUCCEEDED" && live.batchDone === BATCH_SIZE ? 0 : 1;
  } finally {
    if (tty) out.write("\x1b[?25h");
    process.off("SIGINT", interrupt);
    process.off("SIGTERM", interrupt);
    if (supervisor !== undefined) await supervisor.shutdown(5000).catch(() => {});
    try {
      await db.$runledger.close();
    } finally {
      release();
    }
  }
}

export const demoCommand: Command = {
  name: "demo",
  summary: "run a sample workflow and 50 jobs, showing live progress",
  usage: `usage: runledger demo [--database-url URL]

Runs a sample workflow (crawl → classify + score → persist) and 50 jobs with a worker in this
process, showing live progress. Uses --database-url or DATABASE_URL when set (migrating it),
otherwise an embedded database in .runledger/demo-db (needs @electric-sql/pglite).
`,
  options: { "database-url": COMMON_OPTIONS["database-url"], help: COMMON_OPTIONS.help },
  run: (ctx) => {
    const url = (ctx.values["database-url"] as string | undefined) ?? process.env.DATABASE_URL;
    return demo(url === "" ? undefined : url);
  },
};
