// Type-checks every ```ts block of README.md and llms.txt, then runs them against real databases,
// so the documented API cannot drift from the code and the documented paths work. Each block
// becomes a module of its own under .scratch/readme/ (gitignored); a block that starts with a
// `// name.ts` comment is written under that name, so the others can import it as the README shows
// (`./jobs.ts`). The prelude declares the few identifiers blocks use without defining them; the
// runner defines them (`db` on DATABASE_URL, a `sendEmail` that prints) and imports blocks in order.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../src/core/index.ts";
import { getWorkflowRunById, listJobSchedules, queryRows, upsertJobDefinition } from "../src/store/index.ts";
import { useTestDatabase } from "./support/db.ts";
import { finished, type ProcessResult, ROOT, run } from "./support/processes.ts";
import { waitFor } from "./support/wait.ts";

const SCRATCH = join(ROOT, ".scratch", "readme");

const PRELUDE = `import type { RunledgerDb } from "runledger/store";

declare global {
  /** An open handle, as \`createDb(process.env.DATABASE_URL!)\` returns. */
  const db: RunledgerDb;
  /** The application's own mail function, called by the README's email handler. */
  function sendEmail(to: string, subject: string, options: { signal: AbortSignal }): Promise<void>;
}

export {};
`;

const TSCONFIG = {
  extends: "../../../tsconfig.json",
  compilerOptions: { noEmit: true },
  include: ["*.ts"],
};

interface Block {
  file: string;
  line: number;
  code: string;
}

/** A document's ```ts blocks with the line each starts on. */
function tsBlocks(document: string): Block[] {
  const lines = readFileSync(join(ROOT, document), "utf8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== "```ts") continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== "```") end++;
    const code = lines.slice(start, end).join("\n");
    const named = /^\/\/ ([a-z][\w-]*\.ts)\b/.exec(code)?.[1];
    blocks.push({ file: named ?? `block-${blocks.length + 1}.ts`, line: start + 1, code: `${code}\n` });
    i = end;
  }
  return blocks;
}

/** Imports the blocks named on its command line in order, with the prelude's globals defined. */
const RUNNER = `import { createDb, type RunledgerDb } from "runledger/store";

let handle: RunledgerDb | undefined;
Object.defineProperty(globalThis, "db", {
  get: () => (handle ??= createDb(process.env.DATABASE_URL!, { max: 2 })),
});
Object.assign(globalThis, {
  sendEmail: async (to: string, subject: string) => console.log(\`sendEmail to=\${to} subject=\${subject}\`),
});
for (const file of process.argv.slice(2)) {
  await import(\`./\${file}\`);
  console.log(\`ran \${file}\`);
}
await handle?.$runledger.close();
// Blocks that open a pool of their own leave it open, as a long-running process would.
process.exit(0);
`;

const TSX_LOADER = join(ROOT, "node_modules/tsx/dist/loader.mjs");

afterAll(() => rmSync(SCRATCH, { recursive: true, force: true }));

function scratchDir(document: string): string {
  return join(SCRATCH, document.replace(/\W/g, "-"));
}

/** Write the blocks of `document` into a directory of their own and run tsc over them. */
async function typecheck(document: string, blocks: Block[]): Promise<void> {
  const dir = scratchDir(document);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
  writeFileSync(join(dir, "prelude.d.ts"), PRELUDE);
  writeFileSync(join(dir, "run.ts"), RUNNER);
  for (const block of blocks) writeFileSync(join(dir, block.file), block.code);

  const result = await run(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", join(dir, "tsconfig.json"), "--noEmit"]);
  const where = blocks.map((b) => `${b.file} is the block at ${document} line ${b.line}`).join("\n");
  expect(result.code, `${result.stdout}${result.stderr}\n${where}`).toBe(0);
}

/** Run `files` of `document`'s scratch directory, in order, in one process against `url`. */
function startBlocks(document: string, files: string[], url: string): ChildProcess {
  // tsx resolves `runledger/*` through the tsconfig paths, as examples/ do inside the repository.
  return spawn(process.execPath, ["--import", TSX_LOADER, "run.ts", ...files], {
    cwd: scratchDir(document),
    env: { ...process.env, DATABASE_URL: url, TSX_TSCONFIG_PATH: join(ROOT, "tsconfig.json") },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

async function runBlocks(document: string, files: string[], url: string): Promise<ProcessResult> {
  const result = await finished(startBlocks(document, files, url));
  expect(result.code, `${files.join(", ")} of ${document}:\n${result.stdout}${result.stderr}`).toBe(0);
  for (const file of files) expect(result.stdout).toContain(`ran ${file}`);
  return result;
}

const README = tsBlocks("README.md");
const LLMS = tsBlocks("llms.txt");
/** The integration shape's modules; every other README block is a fragment run on its own. */
const INTEGRATION = ["jobs.ts", "web.ts", "worker.ts"];
const FRAGMENTS = README.map((b) => b.file).filter((file) => !INTEGRATION.includes(file));
/** The job types the fragments enqueue: a worker that handles them has synced their definitions. */
const FRAGMENT_JOB_TYPES = [
  "profiles.crawl",
  "profiles.classify",
  "profiles.score",
  "profiles.persist",
  "payments.refund",
  "reports.build",
  "search.reindex",
];

describe("README.md", () => {
  it("type-checks every TypeScript block", async () => {
    expect(README.length).toBeGreaterThanOrEqual(8);
    expect(new Set(README.map((b) => b.file)).size).toBe(README.length);
    expect(README.map((b) => b.file)).toEqual(expect.arrayContaining(INTEGRATION));
    await typecheck("README.md", README);
  }, 60_000);

  it("runs the web and worker processes on a freshly migrated database, no definitions synced", async () => {
    const { db, url } = await useTestDatabase({ max: 2 });
    // The web process first, as on a fresh deploy: its enqueues must not need a worker to have run.
    const web = await runBlocks("README.md", ["web.ts"], url);
    expect(web.stderr).toBe("");
    const jobs = await queryRows<{ status: string }>(db, sql`select status from runledger.job_queue`);
    expect(jobs.map((job) => job.status)).toEqual(["PENDING", "PENDING", "PENDING"]);

    const worker = startBlocks("README.md", ["worker.ts"], url);
    const exit = finished(worker);
    await waitFor(
      async () => {
        const rows = await queryRows<{ n: number }>(
          db,
          sql`select count(*)::int as n from runledger.job_queue where status = 'SUCCEEDED'`,
        );
        return rows[0]!.n === 3;
      },
      { timeoutMs: 20_000, what: "the worker to run the web process's three jobs" },
    );
    worker.kill("SIGTERM");
    const result = await exit;
    expect(result.code, `${result.stdout}${result.stderr}`).toBe(0);
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("SIGTERM received, shutting down");
    expect(result.stdout.match(/sendEmail to=/g)).toHaveLength(3);
    expect(result.stdout).toContain("sendEmail to=grace@example.com subject=Welcome");
  }, 60_000);

  it("runs every other block on a migrated database where their job types are defined", async () => {
    const { db, url } = await useTestDatabase({ max: 2 });
    for (const jobType of FRAGMENT_JOB_TYPES) await upsertJobDefinition(db, { jobType });
    await runBlocks("README.md", FRAGMENTS, url);
    const runs = await queryRows<{ workflow_type: string; id: string }>(
      db,
      sql`select workflow_type, id from runledger.workflow_runs order by workflow_type`,
    );
    expect(runs.map((r) => r.workflow_type)).toEqual(["profiles.research", "refund.flow"]);
    expect((await getWorkflowRunById(db, runs[1]!.id, ALL_ORGANIZATIONS))?.status).toBe("RUNNING");
    const [nightly] = (await listJobSchedules(db, { scope: ALL_ORGANIZATIONS, limit: 10 })).items;
    expect(nightly).toMatchObject({ name: "reports.nightly", timezone: "Europe/Berlin", overlapPolicy: "SKIP" });
    // The backfill block fired last week's seven nightly slots.
    const [backfilled] = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from runledger.job_queue where schedule_id = ${nightly!.id}`,
    );
    expect(backfilled!.n).toBe(7);
    // The own-worker block claimed its job and completed it through runledger/store/worker.
    const exported = await queryRows<{ status: string; progress_done: number }>(
      db,
      sql`select status, progress_done::int from runledger.job_queue where job_type = 'ledger.export'`,
    );
    expect(exported).toEqual([{ status: "SUCCEEDED", progress_done: 1 }]);
  }, 60_000);
});

describe("llms.txt", () => {
  it("type-checks every TypeScript block", async () => {
    expect(LLMS.length).toBeGreaterThanOrEqual(2);
    await typecheck("llms.txt", LLMS);
  }, 60_000);

  it("runs every block on a freshly migrated database", async () => {
    const { db, url } = await useTestDatabase({ max: 2 });
    for (const jobType of FRAGMENT_JOB_TYPES) await upsertJobDefinition(db, { jobType });
    await runBlocks(
      "llms.txt",
      LLMS.map((b) => b.file),
      url,
    );
    const rows = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from runledger.workflow_runs`);
    expect(rows[0]!.n).toBe(2);
  }, 60_000);
});
