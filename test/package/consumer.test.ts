// The published shape of runledger, checked the way a user meets it: build, `npm pack`, install the
// tarball into a scratch project outside the repository, type-check and run a consumer against a
// fresh empty database. Also lints the package with publint and attw.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminClient, resolveServerUrl, withDatabase } from "../../src/testing/server.ts";
import { finished, type ProcessResult, ROOT } from "../support/processes.ts";

const INSTALL_TIMEOUT_MS = 180_000;

/** The environment without npm's per-script variables, so child npm commands act on their own cwd only. */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toLowerCase().startsWith("npm_")) env[key] = value;
  }
  return { ...env, NO_COLOR: "1", FORCE_COLOR: "0", ...extra };
}

function exec(command: string, args: string[], cwd: string): Promise<ProcessResult> {
  return finished(spawn(command, args, { cwd, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] }));
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
import { createDb, enqueueWorkflowRun, migrate, type RunledgerDb, type SchemaReport } from "runledger/store";
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
  const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 50 })).withCatalog(catalog).build();
  return supervisor.runUntilShutdown(AbortSignal.timeout(10), 1000);
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
  let database = "";

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), "runledger-consumer-"));
    app = join(scratch, "app");
    await mkdir(app);

    const build = await exec("npm", ["run", "build"], ROOT);
    expect(build.code, describeRun(build)).toBe(0);
    // Built just above; packing without scripts does not build a second time.
    const pack = await exec("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", scratch], ROOT);
    expect(pack.code, describeRun(pack)).toBe(0);
    const [packed] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    packedFiles = packed!.files.map((f) => f.path);
    const tarball = join(scratch, packed!.filename);

    const manifest = {
      name: "runledger-consumer",
      private: true,
      type: "module",
      dependencies: { valibot: "^1.5.0" },
      devDependencies: { "@types/node": "^20", typescript: "~7.0.2" },
    };
    await writeFile(join(app, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    await copyFile(join(ROOT, "test/package/consumer/main.mjs"), join(app, "main.mjs"));
    await writeFile(join(app, "check.ts"), CHECK_TS);
    await writeFile(join(app, "broken.ts"), BROKEN_TS);
    await writeFile(join(app, "tsconfig.nodenext.json"), tsconfig("check.ts", NODENEXT));
    await writeFile(join(app, "tsconfig.bundler.json"), tsconfig("check.ts", BUNDLER));
    await writeFile(join(app, "tsconfig.broken.json"), tsconfig("broken.ts", NODENEXT));
    const install = await exec("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball], app);
    expect(install.code, describeRun(install)).toBe(0);

    serverUrl = await resolveServerUrl();
    database = `runledger_consumer_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const admin = adminClient(serverUrl);
    try {
      await admin.unsafe(`create database "${database}"`);
    } finally {
      await admin.end({ timeout: 1 });
    }
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    if (database !== "" && process.env.RUNLEDGER_KEEP_TEST_DB !== "1") {
      const admin = adminClient(serverUrl);
      try {
        await admin.unsafe(`drop database if exists "${database}" with (force)`);
      } finally {
        await admin.end({ timeout: 1 });
      }
    }
    if (scratch !== "") await rm(scratch, { recursive: true, force: true });
  });

  it("ships only dist/ and the drizzle/ migrations (with their journal)", () => {
    const stray = packedFiles.filter((p) => !/^(dist|drizzle)\/|^(package\.json|README\.md|LICENSE(\.md)?)$/.test(p));
    expect(stray).toEqual([]);
    expect(packedFiles).toContain("drizzle/meta/_journal.json");
    expect(packedFiles).toContain("dist/store/index.d.ts");
  });

  it("type-checks the subpath imports under NodeNext and under Bundler resolution", async () => {
    for (const config of ["tsconfig.nodenext.json", "tsconfig.bundler.json"]) {
      const result = await exec(join(app, "node_modules/.bin/tsc"), ["-p", config], app);
      expect(result.code, `${config}: ${describeRun(result)}`).toBe(0);
    }
  });

  it("reports the type errors that check.ts expects once the @ts-expect-error lines are gone", async () => {
    const result = await exec(join(app, "node_modules/.bin/tsc"), ["-p", "tsconfig.broken.json"], app);
    expect(result.code).not.toBe(0);
    const errors = [...result.stdout.matchAll(/^broken\.ts\(\d+,\d+\): error (TS\d+): (.*)$/gm)].map((m) => m[1]);
    expect(errors, describeRun(result)).toEqual(["TS2322", "TS2345", "TS2322"]);
    expect(result.stdout).toContain(`'"consumer.missing"' is not assignable`);
  });

  it("migrates an empty database from node_modules and runs jobs and a workflow to SUCCEEDED", async () => {
    const result = await exec(process.execPath, ["main.mjs", withDatabase(serverUrl, database)], app);
    expect(result.code, describeRun(result)).toBe(0);
    const summary = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    expect(summary.migrationsFolder).toBe(await realpath(join(app, "node_modules/runledger/drizzle")));
    const journal = JSON.parse(await readFile(join(ROOT, "drizzle/meta/_journal.json"), "utf8"));
    expect(summary).toMatchObject({
      before: "uninitialized",
      migrated: "current",
      compatible: "current",
      bundled: journal.entries.length,
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
        "./runtime",
        "./testing",
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
