import { finished, type ProcessResult, startTs } from "../support/processes.ts";

/** Run `runledger …args` as a child process (through tsx) against `url`, unless `env` says otherwise. */
export function runCli(url: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<ProcessResult> {
  return finished(startTs("src/cli.ts", args, { DATABASE_URL: url, ...env }));
}

/** The JSON document a `--json` command printed. */
export function parsed<T = Record<string, unknown>>(result: ProcessResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${result.code}): ${result.stdout}\n${result.stderr}`);
  }
}

/** Every line fits a terminal of 80 columns. */
export function widest(text: string): number {
  return Math.max(0, ...text.split("\n").map((line) => [...line].length));
}
