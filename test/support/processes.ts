import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
// Load tsx as a module hook inside the child itself: the tsx CLI would put a wrapper process in
// between, and a SIGKILL aimed at the worker would then kill only the wrapper.
const TSX_HOOK = new URL("../../node_modules/tsx/dist/loader.mjs", import.meta.url).href;

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Start a TypeScript file in its own Node process (through tsx), in `cwd` (default: the repository). */
export function startTs(file: string, args: string[] = [], env: NodeJS.ProcessEnv = {}, cwd = ROOT): ChildProcess {
  return spawn(process.execPath, ["--import", TSX_HOOK, file, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Wait for a child to exit, collecting its output. */
export function finished(child: ChildProcess): Promise<ProcessResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Run a command to completion. */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<ProcessResult> {
  return finished(spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] }));
}
