import { describe, expect, it } from "vitest";
import { run } from "../support/processes.ts";

/*
 * Importing `runledger/core`, `/store`, `/runtime` or `/testing` must never load a module of the
 * dashboard or of the libraries only it uses. A fresh Node process records every module URL it
 * loads (a resolve hook) while importing one subpath, and prints them.
 */

const RECORDER = `
import { register } from "node:module";
import { MessageChannel } from "node:worker_threads";
const { port1, port2 } = new MessageChannel();
const loaded = [];
port1.on("message", (url) => loaded.push(url));
port1.unref();
register(
  "data:text/javascript," +
    encodeURIComponent(\`
      let port;
      export function initialize(data) { port = data.port; }
      export async function resolve(specifier, context, next) {
        const result = await next(specifier, context);
        port.postMessage(result.url);
        return result;
      }
    \`),
  import.meta.url,
  { data: { port: port2 }, transferList: [port2] },
);
globalThis.loadedModules = loaded;
`;

async function modulesLoadedBy(subpath: string): Promise<string[]> {
  const program = `
    await import(${JSON.stringify(subpath)});
    await new Promise((resolve) => setTimeout(resolve, 200));
    process.stdout.write(JSON.stringify(globalThis.loadedModules));
  `;
  const result = await run(process.execPath, [
    "--import",
    `data:text/javascript,${encodeURIComponent(RECORDER)}`,
    "--import",
    new URL("../../node_modules/tsx/dist/loader.mjs", import.meta.url).href,
    "--input-type=module",
    "-e",
    program,
  ]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as string[];
}

describe("loading a subpath", () => {
  it("records the modules a subpath loads (the dashboard's own, when it is the one imported)", async () => {
    const loaded = await modulesLoadedBy("runledger/dashboard");
    expect(loaded.some((url) => url.includes("/src/dashboard/handler.ts"))).toBe(true);
    expect(loaded.some((url) => url.includes("@dagrejs"))).toBe(true);
  });

  it.each(["runledger/core", "runledger/store", "runledger/runtime", "runledger/testing"])(
    "%s never loads dashboard code or its dependencies",
    async (subpath) => {
      const loaded = await modulesLoadedBy(subpath);
      expect(loaded.length).toBeGreaterThan(5);
      expect(loaded.filter((url) => /\/src\/dashboard\/|@dagrejs|htmx|idiomorph/.test(url))).toEqual([]);
    },
  );
});
