import { readFileSync } from "node:fs";
import { type Command, lazyDb, parseCommand, scopeOf } from "./command.ts";
import { dashboardCommand } from "./dashboard.ts";
import { deadLettersListCommand, deadLettersRequeueCommand } from "./dead-letters.ts";
import { demoCommand } from "./demo.ts";
import { doctorCommand } from "./doctor.ts";
import { jobsCancelCommand, jobsListCommand, jobsRequeueCommand, jobsShowCommand } from "./jobs.ts";
import { migrateCommand } from "./migrate.ts";
import { describeError, EXIT, type Output, processOutput, UsageError } from "./output.ts";
import {
  gatesApproveCommand,
  gatesRejectCommand,
  runsCancelCommand,
  runsListCommand,
  runsRetryCommand,
  runsShowCommand,
} from "./runs.ts";
import {
  schedulesListCommand,
  schedulesPauseCommand,
  schedulesResumeCommand,
  typesListCommand,
  typesPauseCommand,
  typesResumeCommand,
} from "./schedules.ts";
import { statusCommand } from "./status.ts";

/** Every command, in the order `runledger --help` lists them. */
export const COMMANDS: readonly Command[] = [
  statusCommand,
  jobsListCommand,
  jobsShowCommand,
  jobsCancelCommand,
  jobsRequeueCommand,
  deadLettersListCommand,
  deadLettersRequeueCommand,
  runsListCommand,
  runsShowCommand,
  runsCancelCommand,
  runsRetryCommand,
  gatesApproveCommand,
  gatesRejectCommand,
  schedulesListCommand,
  schedulesPauseCommand,
  schedulesResumeCommand,
  typesListCommand,
  typesPauseCommand,
  typesResumeCommand,
  doctorCommand,
  migrateCommand,
  dashboardCommand,
  demoCommand,
];

function usage(commands: readonly Command[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `usage: runledger <command> [flags]   (runledger <command> --help for its flags)

${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

Commands that read the database take --database-url URL (default: DATABASE_URL) and --json;
those that read or change tenant data take --org ID (default: every organization).
Exit codes: 0 ok, 1 failure or a problem found, 2 usage (bad flag or argument, no database URL).
  --version   print the version
`;
}

function version(): string {
  // The same relative path from src/cli/ and from dist/cli/.
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** Run `runledger …argv`, writing to `out`; resolves with the exit code. Never throws. */
export async function main(argv: readonly string[], out: Output = processOutput): Promise<number> {
  const [first, second] = argv;
  if (first === "--version" || first === "-V" || first === "version") {
    out.write(`runledger ${version()}\n`);
    return EXIT.ok;
  }
  if (first === undefined || first === "help" || first === "--help" || first === "-h") {
    out.write(usage());
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  const command =
    COMMANDS.find((c) => second !== undefined && c.name === `${first} ${second}`) ??
    COMMANDS.find((c) => c.name === first);
  if (command === undefined) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
    if (group.length > 0) {
      const asked = second === "--help" || second === "-h" || second === "help";
      if (!asked)
        out.error(
          second === undefined
            ? `runledger ${first}: which one?\n\n`
            : `runledger ${first}: unknown command ${JSON.stringify(second)}\n\n`,
        );
      (asked ? out.write : out.error)(usage(group));
      return asked ? EXIT.ok : EXIT.usage;
    }
    out.error(`runledger: unknown command ${JSON.stringify(first)}\n\n${usage()}`);
    return EXIT.usage;
  }
  const args = argv.slice(command.name.split(" ").length);
  const wantsJson = args.includes("--json");
  // Opened only once the flags parsed and --help was not asked for: help never connects.
  let close = async () => {};
  try {
    const { values, positionals } = parseCommand(command, [...args]);
    if (values.help === true) {
      out.write(command.usage);
      return EXIT.ok;
    }
    const scope = scopeOf(values);
    const opened = lazyDb(values);
    close = opened.close;
    return await command.run({
      values,
      positionals,
      json: values.json === true,
      out,
      scope,
      db: opened.db,
    });
  } catch (error) {
    const described = describeError(error);
    if (wantsJson) out.error(`${JSON.stringify({ error: described })}\n`);
    else out.error(`runledger ${command.name}: ${described.message}\n`);
    if (error instanceof UsageError && !wantsJson) out.error(`(runledger ${command.name} --help for usage)\n`);
    return error instanceof UsageError ? EXIT.usage : EXIT.failure;
  } finally {
    await close().catch(() => {});
  }
}
