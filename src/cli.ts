#!/usr/bin/env node
/**
 * The `runledger` command for operators: status, jobs, dead letters, workflow runs, gates,
 * schedules, job types, doctor, migrate, dashboard and demo. Each command lives in `src/cli/`;
 * `runledger --help` lists them.
 */
import { main } from "./cli/index.ts";

// `runledger jobs list | head`: a closed pipe ends the command quietly, as for any Unix tool.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  process.exit(process.exitCode ?? 0);
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
