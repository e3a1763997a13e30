// The published shape of runledger, checked the way a user meets it: build, `npm pack`, install the
// tarball into a scratch project outside the repository, type-check and run a consumer against a
// fresh empty database with the lowest and the highest drizzle-orm the peer range allows, apply the
// migrations the way a deploy pipeline does (drizzle-kit, next to the app's own migrations). Also
// lints the package with publint and attw, and checks that installing a clone warns of no engine.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminClient, resolveServerUrl, withDatabase } from "../../src/testing/server.ts";
import { finished, type ProcessResult, ROOT } from "../support/processes.ts";

const INSTALL_TIMEOUT_MS = 180_000;

const ROOT_PACKAGE = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** The lowest version and the highest minor of the drizzle-orm peer range (`>=0.41.0 <0.46.0`). */
function drizzleBounds(range: string): { lowest: string; highest: string } {
  const match = /^>=(\d+\.\d+\.\d+) <(\d+)\.(\d+)\.0$/.exec(range);
  if (match === null) throw new Error(`unexpected drizzle-orm peer range ${range}`);
  return { lowest: match[1]!, highest: `~${match[2]}.${Number(match[3]) - 1}.0` };
}
const DRIZZLE = drizzleBounds(ROOT_PACKAGE.peerDependencies["drizzle-orm"]!);

/** The app's own drizzle setup: one migration of its own, journaled where drizzle-kit puts it by default. */
const APP_DRIZZLE_CONFIG = `import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  out: "./drizzle",
  dbCredentials: { url: process.env.DATABASE_URL! },
});
`;
const APP_MIGRATION = 'CREATE TABLE "users" ("id" serial PRIMARY KEY NOT NULL, "email" text NOT NULL);\n';
const APP_JOURNAL = {
  version: "7",
  dialect: "postgresql",
  entries: [{ idx: 0, version: "7", when: 1_700_000_000_000, tag: "0000_app_users", breakpoints: true }],
};

/** The environment without npm's per-script variables, so child npm commands act on their own cwd only. */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toLowerCase().startsWith("npm_")) env[key] = value;
  }
  return { ...env, NO_COLOR: "1", FORCE_COLOR: "0", ...extra };
}

function exec(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<ProcessResult> {
  return finished(spawn(command, args, { cwd, env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] }));
}

/** Every file under `dir`. */
async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((entry) => (entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)])),
  );
  return nested.flat();
}

function lastJson(result: ProcessResult): Record<string, unknown> {
  return JSON.parse(result.stdout.trim().split("\n").at(-1)!);
}

function describeRun(result: ProcessResult): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

/** Whether `npx --yes <pkg>` can start the tool (from the npm cache or the registry), and why not. */
async function npxTool(pkg: string): Promise<{ ok: boolean; reason: string }> {
  const result = await exec("npx", ["--yes", pkg, "--version"], tmpdir());
  const error = result.stderr.match(/npm error (code \S+|.*)/)?.[1] ?? `exit ${result.code}`;
  return result.code === 0 ? { ok: true, reason: "" } : { ok: false, reason: `npx could not fetch ${pkg}: ${error}` };
}

const CHECK_TS = `import { type JobStatus, WorkflowDagBuilder, type WorkflowRunStatus } from "runledger/core";
import { JobCatalog, JobsConfig, type ShutdownReport, Supervisor } from "runledger/runtime";
import * as appApi from "runledger/store";
import { createDb, enqueueWorkflowRun, migrate, type RunledgerDb, type SchemaReport } from "runledger/store";
import { claimRunnableJobs, completeJobSuccess, type LeaseIdentity } from "runledger/store/worker";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { createDashboard, type DashboardAction } from "runledger/dashboard";
import * as v from "valibot";

export async function main(url: string): Promise<ShutdownReport> {
  const db: RunledgerDb = createDb(url);
  const report: SchemaReport = await migrate(db);
  const state: "current" | "behind" | "ahead" | "diverged" | "uninitialized" = report.state;
  const catalog = new JobCatalog()
    .job(
      "consumer.add",
      async (payload) => {
        const sum: number = payload.a + payload.b;
        void sum;
      },
      { payload: v.object({ a: v.number(), b: v.number() }) },
    )
    .job("consumer.echo", async () => {});
  await catalog.enqueue(db, "consumer.add", { a: 1, b: 2 });
  // The app's own drizzle database and its transactions are runledger executors too.
  const own = drizzle(postgres(url));
  await own.transaction(async (tx) => {
    await catalog.enqueue(tx, "consumer.add", { a: 1, b: 2 });
  });
  // @ts-expect-error the payload schema says \`a\` is a number
  await catalog.enqueue(db, "consumer.add", { a: "1", b: 2 });
  // @ts-expect-error the catalog has no such job type
  await catalog.enqueue(db, "consumer.missing", {});
  const done: JobStatus = "SUCCEEDED";
  // @ts-expect-error not a job status
  const bogus: JobStatus = "DONE";
  const run = await enqueueWorkflowRun(db, WorkflowDagBuilder.new("flow", {}).job("a", "consumer.add", {}).build());
  const runStatus: WorkflowRunStatus = run.status;
  void [state, done, bogus, runStatus];
  const dashboard: (request: Request) => Promise<Response> = createDashboard({
    db,
    basePath: "/admin/jobs",
    authorize: (_request, action: DashboardAction) => action === "read",
  });
  // @ts-expect-error authorize is required
  const missingAuthorize = () => createDashboard({ db });
  void [dashboard, missingAuthorize];
  const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 50 })).withCatalog(catalog).build();
  return supervisor.runUntilShutdown(AbortSignal.timeout(10), 1000);
}

/** A worker of the app's own, on the low-level lifecycle: the claim's job is its lease. */
export async function ownWorker(db: RunledgerDb): Promise<void> {
  const [job] = await claimRunnableJobs(db, { workerId: "own", leaseSeconds: 30, limit: 1 });
  if (job === undefined) return;
  const lease: LeaseIdentity = job;
  await completeJobSuccess(db, { lease });
  // @ts-expect-error the worker's lifecycle is runledger/store/worker, not the app's runledger/store
  void appApi.claimRunnableJobs;
}
`;

/** check.ts with its `@ts-expect-error` directives removed: each marked line must now fail. */
const BROKEN_TS = CHECK_TS.replaceAll(/^\s*\/\/ @ts-expect-error.*\n/gm, "");

function tsconfig(file: string, options: Record<string, string>): string {
  const compilerOptions = {
    target: "ES2022",
    ...options,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: ["node"],
  };
  return `${JSON.stringify({ compilerOptions, files: [file] }, null, 2)}\n`;
}

const NODENEXT = { module: "NodeNext", moduleResolution: "NodeNext" };
const BUNDLER = { module: "ESNext", moduleResolution: "Bundler" };

describe("the packed package in a consumer project", () => {
  let scratch = "";
  let app = "";
  let packedFiles: string[] = [];
  let serverUrl = "";
  const databases: string[] = [];

  /** A new empty database on the test server, dropped after the file. */
  async function emptyDatabase(): Promise<string> {
    const name = `runledger_consumer_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const admin = adminClient(serverUrl);
    try {
      await admin.unsafe(`create database "${name}"`);
    } finally {
      await admin.end({ timeout: 1 });
    }
    databases.push(name);
    return withDatabase(serverUrl, name);
  }

  async function installDrizzle(spec: string): Promise<void> {
    const args = ["install", "--no-audit", "--no-fund", "--prefer-offline", `drizzle-orm@${spec}`];
    const install = await exec("npm", args, app);
    expect(install.code, describeRun(install)).toBe(0);
  }

  function installedDrizzle(): string {
    return JSON.parse(readFileSync(join(app, "node_modules/drizzle-orm/package.json"), "utf8")).version;
  }

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), "runledger-consumer-"));
    app = join(scratch, "app");
    await mkdir(join(app, "drizzle/meta"), { recursive: true });

    const build = await exec("npm", ["run", "build"], ROOT);
    expect(build.code, describeRun(build)).toBe(0);
    // Built just above; packing without scripts does not build a second time.
    const pack = await exec("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", scratch], ROOT);
    expect(pack.code, describeRun(pack)).toBe(0);
    const [packed] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    packedFiles = packed!.files.map((f) => f.path);
    const tarball = join(scratch, packed!.filename);

    // The app owns its drizzle-orm (runledger's peer) and drizzle-kit, and has migrations of its own.
    const manifest = {
      name: "runledger-consumer",
      private: true,
      type: "module",
      dependencies: { valibot: "^1.5.0", postgres: "^3.4.9", "drizzle-orm": DRIZZLE.highest },
      devDependencies: {
        "@types/node": "^20",
        "drizzle-kit": ROOT_PACKAGE.devDependencies["drizzle-kit"],
        typescript: "~7.0.2",
      },
    };
    await writeFile(join(app, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    for (const file of ["main.mjs", "deployed.mjs", "embedded.mjs"]) {
      await copyFile(join(ROOT, "test/package/consumer", file), join(app, file));
    }
    await writeFile(join(app, "check.ts"), CHECK_TS);
    await writeFile(join(app, "broken.ts"), BROKEN_TS);
    await writeFile(join(app, "tsconfig.nodenext.json"), tsconfig("check.ts", NODENEXT));
    await writeFile(join(app, "tsconfig.bundler.json"), tsconfig("check.ts", BUNDLER));
    await writeFile(join(app, "tsconfig.broken.json"), tsconfig("broken.ts", NODENEXT));
    await writeFile(join(app, "drizzle.config.ts"), APP_DRIZZLE_CONFIG);
    await writeFile(join(app, "drizzle/0000_app_users.sql"), APP_MIGRATION);
    await writeFile(join(app, "drizzle/meta/_journal.json"), `${JSON.stringify(APP_JOURNAL, null, 2)}\n`);
    const install = await exec("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball], app);
    expect(install.code, describeRun(install)).toBe(0);

    serverUrl = await resolveServerUrl();
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    if (databases.length > 0 && process.env.RUNLEDGER_KEEP_TEST_DB !== "1") {
      const admin = adminClient(serverUrl);
      try {
        for (const name of databases) await admin.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await admin.end({ timeout: 1 });
      }
    }
    if (scratch !== "") await rm(scratch, { recursive: true, force: true });
  });

  it("ships dist/, its sources, the drizzle/ migrations with their drizzle-kit config, llms.txt and the license", () => {
    const shipped =
      /^(dist|src|drizzle)\/|^(bin\/runledger\.js|package\.json|README\.md|LICENSE|llms\.txt|drizzle\.config\.ts)$/;
    expect(packedFiles.filter((p) => !shipped.test(p))).toEqual([]);
    for (const file of [
      "LICENSE",
      "llms.txt",
      "drizzle.config.ts",
      "drizzle/meta/_journal.json",
      "dist/store/index.d.ts",
      "dist/store/worker.d.ts",
      "dist/cli.js",
      "bin/runledger.js",
      "src/store/index.ts",
    ]) {
      expect(packedFiles).toContain(file);
    }
    expect(packedFiles.filter((p) => p.endsWith(".test.ts"))).toEqual([]);
  });

  it("ships source maps and declaration maps whose sources all resolve inside the package", async () => {
    const pkg = join(app, "node_modules/runledger");
    const maps = (await walk(join(pkg, "dist"))).filter((file) => file.endsWith(".map"));
    expect(maps.length).toBeGreaterThan(20);
    const unresolved: string[] = [];
    for (const map of maps) {
      const { sources, sourceRoot = "" } = JSON.parse(await readFile(map, "utf8")) as {
        sources: string[];
        sourceRoot?: string;
      };
      expect(sources.length, map).toBeGreaterThan(0);
      for (const source of sources) {
        const target = resolve(dirname(map), sourceRoot, source);
        if (!target.startsWith(`${pkg}/`) || !existsSync(target)) unresolved.push(`${map}: ${source}`);
      }
    }
    expect(unresolved).toEqual([]);
  });

  it("installs the runledger command, which runs the build", async () => {
    const result = await exec(join(app, "node_modules/.bin/runledger"), ["--version"], app);
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout.trim()).toBe(`runledger ${ROOT_PACKAGE.version}`);
  });

  it("does not install PGlite, and the embedded database names the package to install", async () => {
    expect(existsSync(join(app, "node_modules/@electric-sql/pglite"))).toBe(false);
    const result = await exec(process.execPath, ["embedded.mjs"], app);
    expect(result.code, describeRun(result)).toBe(0);
    expect(lastJson(result)).toEqual({
      name: "RunledgerError",
      code: "db.embedded_unavailable",
      message: expect.stringContaining("npm install @electric-sql/pglite"),
    });
  });

  it("applies runledger's migrations with drizzle-kit from the app's root, next to the app's own", async () => {
    const url = await emptyDatabase();
    const kit = join(app, "node_modules/.bin/drizzle-kit");
    // The app's own deploy step first, as it was before runledger came along.
    const own = await exec(kit, ["migrate"], app, { DATABASE_URL: url });
    expect(own.code, describeRun(own)).toBe(0);
    const before = await exec(process.execPath, ["deployed.mjs", url], app);
    expect(before.code, describeRun(before)).toBe(0);
    expect(lastJson(before)).toMatchObject({ state: "schema.uninitialized", runledgerJournal: null });

    // Exactly the command the README's "Deploying" section gives.
    const args = ["drizzle-kit", "migrate", "--config", "node_modules/runledger/drizzle.config.ts"];
    const ours = await exec("npx", args, app, { DATABASE_URL: url });
    expect(ours.code, describeRun(ours)).toBe(0);

    const result = await exec(process.execPath, ["deployed.mjs", url], app);
    expect(result.code, describeRun(result)).toBe(0);
    const summary = lastJson(result) as {
      state: string;
      bundled: number;
      runledgerJournal: { hash: string }[];
      appJournal: unknown[];
      appTables: string[];
    };
    expect(summary.state).toBe("current");
    expect(summary.runledgerJournal).toHaveLength(summary.bundled);
    expect(summary.appTables).toEqual(["users"]);
    // The app's journal is exactly what its own migrate wrote: one row, untouched.
    expect(summary.appJournal).toHaveLength(1);
    expect(summary.appJournal).toEqual(lastJson(before).appJournal);
    // Running both again changes nothing.
    for (const again of [
      await exec(kit, ["migrate"], app, { DATABASE_URL: url }),
      await exec("npx", args, app, { DATABASE_URL: url }),
    ]) {
      expect(again.code, describeRun(again)).toBe(0);
    }
    expect(lastJson(await exec(process.execPath, ["deployed.mjs", url], app))).toEqual(summary);
  });

  it("reports the type errors that check.ts expects once the @ts-expect-error lines are gone", async () => {
    const result = await exec(join(app, "node_modules/.bin/tsc"), ["-p", "tsconfig.broken.json"], app);
    expect(result.code).not.toBe(0);
    const errors = [...result.stdout.matchAll(/^broken\.ts\(\d+,\d+\): error (TS\d+): (.*)$/gm)].map((m) => m[1]);
    expect(errors, describeRun(result)).toEqual(["TS2322", "TS2345", "TS2322", "TS2741", "TS2339"]);
    expect(result.stdout).toContain(`'"consumer.missing"' is not assignable`);
  });

  // The highest minor first (what the app installed above), then the lowest version of the range.
  describe.each([
    ["highest", DRIZZLE.highest],
    ["lowest", DRIZZLE.lowest],
  ])("with the %s drizzle-orm of the peer range (%s)", (bound, spec) => {
    beforeAll(async () => {
      if (bound === "lowest") await installDrizzle(spec);
      const version = installedDrizzle();
      // "~0.45.0" is any 0.45.x.
      expect(version.startsWith(bound === "lowest" ? spec : spec.slice(1, spec.lastIndexOf(".") + 1))).toBe(true);
    }, INSTALL_TIMEOUT_MS);

    it("type-checks the subpath imports under NodeNext and under Bundler resolution", async () => {
      for (const config of ["tsconfig.nodenext.json", "tsconfig.bundler.json"]) {
        const result = await exec(join(app, "node_modules/.bin/tsc"), ["-p", config], app);
        expect(result.code, `${config}: ${describeRun(result)}`).toBe(0);
      }
    });

    it("migrates an empty database from node_modules and runs jobs and a workflow to SUCCEEDED", async () => {
      const result = await exec(process.execPath, ["main.mjs", await emptyDatabase()], app);
      expect(result.code, describeRun(result)).toBe(0);
      const summary = lastJson(result) as Record<string, unknown> & { ran: string[] };
      expect(summary.migrationsFolder).toBe(await realpath(join(app, "node_modules/runledger/drizzle")));
      const journal = JSON.parse(await readFile(join(ROOT, "drizzle/meta/_journal.json"), "utf8"));
      expect(summary).toMatchObject({
        before: "uninitialized",
        migrated: "current",
        compatible: "current",
        bundled: journal.entries.length,
        storeSubpaths: { appHasLifecycle: false, workerHasLifecycle: true },
      });
      expect(summary.jobs).toEqual([
        { jobType: "consumer.add", status: "SUCCEEDED" },
        { jobType: "consumer.echo", status: "SUCCEEDED" },
      ]);
      expect(summary.workflow).toEqual({
        status: "SUCCEEDED",
        steps: [
          { stepKey: "first", status: "SUCCEEDED" },
          { stepKey: "second", status: "SUCCEEDED" },
        ],
      });
      expect([...summary.ran].sort()).toEqual(["add:42", "add:5", "echo:after first", "echo:hello"]);
      expect(summary.ran.indexOf("add:42")).toBeLessThan(summary.ran.indexOf("echo:after first"));
      expect(summary.abandoned).toEqual([]);
    });
  });
});

describe("a clone of the repository", () => {
  it(
    "installs without engine warnings (the benchmark's peers live in bench/)",
    async () => {
      const args = ["install", "--dry-run", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"];
      const result = await exec("npm", args, ROOT);
      expect(result.code, describeRun(result)).toBe(0);
      expect(`${result.stdout}${result.stderr}`).not.toContain("EBADENGINE");
      expect(ROOT_PACKAGE.devDependencies).not.toHaveProperty("graphile-worker");
      expect(ROOT_PACKAGE.devDependencies).not.toHaveProperty("pg-boss");
    },
    INSTALL_TIMEOUT_MS,
  );
});

const publint = await npxTool("publint");
const attw = await npxTool("@arethetypeswrong/cli");

describe("package lint", () => {
  it.skipIf(!publint.ok)(`publint reports no errors${publint.ok ? "" : ` (skipped: ${publint.reason})`}`, async () => {
    const result = await exec("npx", ["--yes", "publint"], ROOT);
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout, describeRun(result)).not.toMatch(/^Errors?:/m);
  });

  it.skipIf(!attw.ok)(
    `attw (esm-only profile) finds no problems${attw.ok ? "" : ` (skipped: ${attw.reason})`}`,
    async () => {
      const args = ["--yes", "@arethetypeswrong/cli", "--pack", ".", "--profile", "esm-only", "--format", "json"];
      const result = await exec("npx", args, ROOT);
      expect(result.code, describeRun(result)).toBe(0);
      const report = JSON.parse(result.stdout) as {
        problems: Record<string, { kind: string; entrypoint?: string; resolutionKind?: string }[]>;
        analysis: {
          entrypoints: Record<string, { resolutions: Record<string, { resolution?: { fileName: string } }> }>;
        };
      };
      // The esm-only profile ignores node10 and require() from CommonJS; nothing else may be wrong.
      const ignored = new Set(["node10", "node16-cjs"]);
      const problems = Object.values(report.problems)
        .flat()
        .filter((p) => p.resolutionKind === undefined || !ignored.has(p.resolutionKind));
      expect(problems).toEqual([]);
      const resolved = Object.entries(report.analysis.entrypoints).map(([entry, { resolutions }]) => [
        entry,
        resolutions["node16-esm"]?.resolution?.fileName,
        resolutions.bundler?.resolution?.fileName,
      ]);
      expect(resolved.map(([entry]) => entry)).toEqual([
        ".",
        "./core",
        "./store",
        "./store/worker",
        "./runtime",
        "./testing",
        "./dashboard",
        "./package.json",
      ]);
      for (const [entry, node16, bundler] of resolved) {
        expect(node16, entry).toMatch(/\/node_modules\/runledger\/(dist\/.*\.d\.ts|package\.json)$/);
        expect(bundler, entry).toBe(node16);
      }
    },
    INSTALL_TIMEOUT_MS,
  );
});
