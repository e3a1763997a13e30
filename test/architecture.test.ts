import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./support/processes.ts";

const SRC = join(ROOT, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

/** Every module specifier a file imports or re-exports (static and dynamic). */
function importsOf(text: string): string[] {
  const specifiers: string[] = [];
  const patterns = [
    /\bfrom\s+["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /^\s*import\s+["']([^"']+)["']/gm,
  ];
  for (const pattern of patterns) for (const match of text.matchAll(pattern)) specifiers.push(match[1]!);
  return specifiers;
}

function layerOf(path: string): string {
  return relative(SRC, path).split("/")[0]!;
}

/** Which layer a relative import lands in, seen from `file`. */
function targetLayer(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  return layerOf(join(file, "..", specifier));
}

/** A layer's entry points besides its index.ts: `runledger/store/worker`, the worker's lifecycle. */
const SUBPATHS: Readonly<Record<string, string>> = { "./store/worker": "store/worker" };

const files = sourceFiles(SRC).map((path) => ({
  path,
  layer: layerOf(path),
  imports: importsOf(readFileSync(path, "utf8")),
}));

/** Each module (a path relative to src/) and the modules it imports relatively: type-only imports, re-exports and dynamic imports count. */
function importGraph(modules: readonly { path: string; imports: readonly string[] }[]): Map<string, string[]> {
  return new Map(
    modules.map((f) => [
      relative(SRC, f.path),
      f.imports.filter((s) => s.startsWith(".")).map((s) => relative(SRC, join(dirname(f.path), s))),
    ]),
  );
}

/**
 * The import cycles of `graph`, each as the path that closes it (`a.ts → b.ts → a.ts`): a depth-first
 * walk reports every import that leads back to a module still on its stack.
 */
function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const cycles: string[] = [];
  const done = new Set<string>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const visit = (module: string): void => {
    stack.push(module);
    onStack.add(module);
    for (const target of graph.get(module) ?? []) {
      if (onStack.has(target)) cycles.push([...stack.slice(stack.indexOf(target)), target].join(" → "));
      else if (!done.has(target) && graph.has(target)) visit(target);
    }
    stack.pop();
    onStack.delete(module);
    done.add(module);
  };
  for (const module of [...graph.keys()].sort()) if (!done.has(module)) visit(module);
  return cycles;
}

/** Every chain of imports from a module under `from` to one under `to` (directly or through others), one per starting module. */
function importChains(graph: ReadonlyMap<string, readonly string[]>, from: string, to: string): string[] {
  const chains: string[] = [];
  for (const start of [...graph.keys()].filter((m) => m.startsWith(from)).sort()) {
    const via = new Map<string, string>();
    const queue = [start];
    let reached: string | undefined;
    while (queue.length > 0 && reached === undefined) {
      const module = queue.shift()!;
      for (const target of graph.get(module) ?? []) {
        if (via.has(target) || target === start) continue;
        via.set(target, module);
        if (target.startsWith(to)) {
          reached = target;
          break;
        }
        queue.push(target);
      }
    }
    if (reached === undefined) continue;
    const chain = [reached];
    while (chain[0] !== start) chain.unshift(via.get(chain[0]!)!);
    chains.push(chain.join(" → "));
  }
  return chains;
}

const graph = importGraph(files);

describe("architecture", () => {
  it("keeps core free of I/O: only valibot, croner, uuidv7 and itself", () => {
    const offending = files
      .filter((f) => f.layer === "core")
      .flatMap((f) =>
        f.imports
          .filter((s) =>
            s.startsWith(".") ? targetLayer(f.path, s) !== "core" : !/^(valibot|croner|uuidv7)(\/|$)/.test(s),
          )
          .map((s) => `${relative(ROOT, f.path)} -> ${s}`),
      );
    expect(offending).toEqual([]);
  });

  it("keeps store from importing runtime or testing", () => {
    const offending = files
      .filter((f) => f.layer === "store")
      .flatMap((f) =>
        f.imports
          .filter((s) => ["runtime", "testing"].includes(targetLayer(f.path, s) ?? ""))
          .map((s) => `${relative(ROOT, f.path)} -> ${s}`),
      );
    expect(offending).toEqual([]);
  });

  it("keeps runtime from importing testing and from writing SQL of its own", () => {
    const runtime = files.filter((f) => f.layer === "runtime");
    const offending = runtime.flatMap((f) =>
      f.imports
        .filter((s) => targetLayer(f.path, s) === "testing" || /^(drizzle-orm|postgres)(\/|$)/.test(s))
        .map((s) => `${relative(ROOT, f.path)} -> ${s}`),
    );
    expect(offending).toEqual([]);
  });

  it("keeps the dashboard on core and store: no runtime, no testing", () => {
    const dashboard = files.filter((f) => f.layer === "dashboard");
    expect(dashboard.length).toBeGreaterThan(0);
    const offending = dashboard.flatMap((f) =>
      f.imports
        .filter((s) => ["runtime", "testing", "cli.ts", "cli"].includes(targetLayer(f.path, s) ?? ""))
        .map((s) => `${relative(ROOT, f.path)} -> ${s}`),
    );
    expect(offending).toEqual([]);
  });

  it("keeps every other layer from importing the dashboard or its libraries", () => {
    const offending = files
      .filter((f) => !["dashboard", "cli.ts", "cli"].includes(f.layer))
      .flatMap((f) =>
        f.imports
          .filter((s) => targetLayer(f.path, s) === "dashboard" || /^@dagrejs\//.test(s))
          .map((s) => `${relative(ROOT, f.path)} -> ${s}`),
      );
    expect(offending).toEqual([]);
  });

  it("crosses layers only through the other layer's index.ts (or a documented subpath)", () => {
    const entries = Object.values(SUBPATHS).map((entry) => `/${entry}.ts`);
    const offending = files.flatMap((f) =>
      f.imports
        .filter((s) => {
          const target = targetLayer(f.path, s);
          return (
            target !== undefined &&
            target !== f.layer &&
            !s.endsWith(`/${target}/index.ts`) &&
            !entries.some((entry) => s.endsWith(entry)) &&
            target !== "index.ts"
          );
        })
        .map((s) => `${relative(ROOT, f.path)} -> ${s}`),
    );
    expect(offending).toEqual([]);
  });

  it("exports exactly the subpaths that have an index.ts, each pointing at its dist build", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      exports: Record<string, string | { types: string; default: string }>;
    };
    // src/cli/ holds the `runledger` bin's commands (package.json `bin`), not a subpath.
    const layers = readdirSync(SRC).filter((entry) => entry !== "cli" && statSync(join(SRC, entry)).isDirectory());
    const expected = [".", ...layers.map((l) => `./${l}`), ...Object.keys(SUBPATHS), "./package.json"].sort();
    expect(Object.keys(pkg.exports).sort()).toEqual(expected);
    for (const [subpath, entry] of Object.entries(SUBPATHS)) {
      expect(readdirSync(join(SRC, entry, ".."))).toContain(`${entry.split("/").at(-1)}.ts`);
      expect(pkg.exports[subpath]).toEqual({ types: `./dist/${entry}.d.ts`, default: `./dist/${entry}.js` });
    }
    for (const layer of layers) {
      expect(readdirSync(join(SRC, layer))).toContain("index.ts");
      expect(pkg.exports[`./${layer}`]).toEqual({
        types: `./dist/${layer}/index.d.ts`,
        default: `./dist/${layer}/index.js`,
      });
    }
  });

  it("keeps the worker's lifecycle out of the app's runledger/store, and only there", async () => {
    const app = await import("../src/store/index.ts");
    const worker = await import("../src/store/worker.ts");
    const shared = Object.keys(worker).filter((name) => name in app);
    expect(shared).toEqual([]);
    for (const name of ["claimRunnableJobs", "completeJobsSuccess", "heartbeatJobs", "reapExpiredLeases"]) {
      expect(typeof (worker as Record<string, unknown>)[name], name).toBe("function");
    }
    for (const name of ["enqueueJob", "migrate", "listJobs", "cancelJob", "createDb"]) {
      expect(typeof (app as Record<string, unknown>)[name], name).toBe("function");
    }
  });

  it("has no import cycles anywhere in src", () => {
    expect(graph.size).toBe(files.length);
    expect(findCycles(graph)).toEqual([]);
  });

  it("keeps workflows/ from importing jobs/, directly or through another module (jobs/ may import workflows/)", () => {
    expect(importChains(graph, "store/jobs/", "store/workflows/").length).toBeGreaterThan(0);
    expect(importChains(graph, "store/workflows/", "store/jobs/")).toEqual([]);
  });

  it("finds the cycles and the chains it forbids in a graph built to have them", () => {
    const cyclic = new Map([
      ["a.ts", ["b.ts", "lib.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
      ["d.ts", ["a.ts", "d.ts"]],
      ["lib.ts", []],
    ]);
    expect(findCycles(cyclic)).toEqual(["a.ts → b.ts → c.ts → a.ts", "d.ts → d.ts"]);
    expect(
      findCycles(
        new Map([
          ["a.ts", ["b.ts"]],
          ["b.ts", []],
          ["c.ts", ["a.ts", "b.ts"]],
        ]),
      ),
    ).toEqual([]);

    const layered = new Map([
      ["store/workflows/settle.ts", ["store/sql/jobs.ts"]],
      ["store/sql/jobs.ts", ["store/jobs/mappers.ts"]],
      ["store/jobs/mappers.ts", []],
      ["store/jobs/complete.ts", ["store/workflows/settle.ts"]],
    ]);
    expect(importChains(layered, "store/workflows/", "store/jobs/")).toEqual([
      "store/workflows/settle.ts → store/sql/jobs.ts → store/jobs/mappers.ts",
    ]);
    expect(importChains(layered, "store/jobs/", "store/workflows/")).toEqual([
      "store/jobs/complete.ts → store/workflows/settle.ts",
    ]);
  });

  it("reads type-only imports and re-exports as edges of the import graph", () => {
    const modules = [
      { path: join(SRC, "store/a.ts"), imports: importsOf(`import type { B } from "./b.ts";`) },
      { path: join(SRC, "store/b.ts"), imports: importsOf(`export type { A } from "./a.ts";`) },
    ];
    expect(findCycles(importGraph(modules))).toEqual(["store/a.ts → store/b.ts → store/a.ts"]);
  });

  it("recognises the imports it polices", () => {
    expect(
      importsOf(`import { a } from "../store/index.ts";\nexport * from "./x.ts";\nawait import("postgres");`),
    ).toEqual(["../store/index.ts", "./x.ts", "postgres"]);
  });
});
