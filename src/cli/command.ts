import { type ParseArgsConfig, parseArgs } from "node:util";
import { ALL_ORGANIZATIONS, type OrganizationScope } from "../core/index.ts";
import { createDb, type RunledgerDb } from "../store/index.ts";
import { json, type Output, UsageError } from "./output.ts";

/*
 * What a command is (its name, usage and flags) and what it gets to run: parsed flags, the
 * organization scope and a database handle opened on first use, so `--help` and bad flags never
 * connect.
 */

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Flags every command that reads the database takes. */
export const COMMON_OPTIONS = {
  json: { type: "boolean" },
  "database-url": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

/** The organization scope flag, for commands that read or change tenant data. */
export const ORG_OPTION = { org: { type: "string" } } as const satisfies Options;

export interface CommandContext {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  json: boolean;
  out: Output;
  /** `--org ID`, or every organization. */
  scope: OrganizationScope;
  /** The database of `--database-url` or `DATABASE_URL`, opened on first call. */
  db(): RunledgerDb;
}

export interface Command {
  /** `jobs list`, `status`, … */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The full help text (flags and arguments). */
  usage: string;
  options: Options;
  /** Positional arguments allowed (default none). */
  positionals?: { min: number; max: number };
  /** Commands that manage their own connection (demo, dashboard) skip `db()`. */
  run(ctx: CommandContext): Promise<number>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A UUID given on the command line, lower-cased; a usage error naming `what` otherwise. */
export function uuidArg(value: string, what: string): string {
  if (!UUID.test(value)) throw new UsageError(`${JSON.stringify(value)} is not a ${what} (a UUID)`);
  return value.toLowerCase();
}

/** Parse a command's flags (strictly: an unknown flag is a usage error). */
export function parseCommand(
  command: Command,
  args: string[],
): { values: CommandContext["values"]; positionals: string[] } {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options: command.options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
  const { min, max } = command.positionals ?? { min: 0, max: 0 };
  if (parsed.values.help !== true) {
    if (parsed.positionals.length < min) throw new UsageError(`runledger ${command.name}: missing argument`);
    if (parsed.positionals.length > max) {
      throw new UsageError(`runledger ${command.name}: unexpected argument ${JSON.stringify(parsed.positionals[max])}`);
    }
  }
  return { values: parsed.values as CommandContext["values"], positionals: parsed.positionals };
}

/** The scope of `--org`. */
export function scopeOf(values: CommandContext["values"]): OrganizationScope {
  const org = values.org;
  if (org === undefined) return ALL_ORGANIZATIONS;
  return Object.freeze({ organizationId: uuidArg(String(org), "organization id") });
}

/** The database URL of `--database-url` or `DATABASE_URL`; a usage error when neither is set. */
export function databaseUrl(values: CommandContext["values"]): string {
  const url = (values["database-url"] as string | undefined) ?? process.env.DATABASE_URL;
  if (url === undefined || url === "") {
    throw new UsageError("set DATABASE_URL or pass --database-url to name the database");
  }
  return url;
}

/** A lazily opened database handle and its closer. */
export function lazyDb(values: CommandContext["values"]): { db: () => RunledgerDb; close: () => Promise<void> } {
  let db: RunledgerDb | undefined;
  return {
    db: () => {
      db ??= createDb(databaseUrl(values), { max: 2, applicationName: "runledger-cli" });
      return db;
    },
    close: async () => {
      if (db !== undefined) await db.$runledger.close();
    },
  };
}

/** A time flag: an ISO 8601 time, or an age such as `30m`, `2h`, `7d` (that long ago). */
export function timeArg(value: string | undefined, flag: string, now = Date.now()): Date | undefined {
  if (value === undefined) return undefined;
  const age = /^(\d+)(s|m|h|d)$/.exec(value);
  if (age) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as "s" | "m" | "h" | "d"];
    return new Date(now - Number(age[1]) * unit);
  }
  const date = /^\d{4}-\d{2}-\d{2}/.test(value) ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw new UsageError(
      `--${flag}: ${JSON.stringify(value)} is not a time (2026-12-03T10:00:00Z) or an age (30m, 2h, 7d)`,
    );
  }
  return date;
}

/** A positive integer flag within bounds. */
export function intArg(value: string | undefined, flag: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(n) || n < 1 || n > max) {
    throw new UsageError(`--${flag} must be a whole number from 1 to ${max}, not ${JSON.stringify(value)}`);
  }
  return n;
}

/** One of a fixed set of values (case-insensitive), upper-cased. */
export function choiceArg<T extends string>(value: string, flag: string, choices: readonly T[]): T {
  const upper = value.toUpperCase();
  if (!(choices as readonly string[]).includes(upper)) {
    throw new UsageError(`--${flag} must be one of ${choices.join(", ")}, not ${JSON.stringify(value)}`);
  }
  return upper as T;
}

/** A keyset cursor as printed by a list (`<time>_<id>`), for `--after`. */
export function cursorArg(value: string | undefined): { at: Date; id: string } | undefined {
  if (value === undefined) return undefined;
  const [at, id] = value.split("_");
  const date = new Date(at ?? "");
  if (id === undefined || Number.isNaN(date.getTime()) || !UUID.test(id)) {
    throw new UsageError(`--after: ${JSON.stringify(value)} is not a cursor printed by a list`);
  }
  return { at: date, id };
}

/** A keyset cursor to print. */
export const cursorText = (at: Date, id: string) => `${at.toISOString()}_${id}`;

/**
 * How every list command prints a page: `{ items, next }` with `--json`; otherwise `empty` or the
 * table `writeTable` draws, then the `--after` argument that fetches the next page. Returns the exit code.
 */
export function printPage<T>(
  ctx: CommandContext,
  page: { items: readonly T[]; next: string | null },
  empty: string,
  writeTable: (items: readonly T[]) => void,
): number {
  if (ctx.json) {
    json(ctx.out, { items: page.items, next: page.next });
    return 0;
  }
  if (page.items.length === 0) ctx.out.write(`${empty}\n`);
  else writeTable(page.items);
  if (page.next !== null) ctx.out.write(`more: --after ${page.next}\n`);
  return 0;
}

/** Query parameters of a connection URL that carry a secret (compared case-insensitively). */
const SECRET_PARAMS = new Set(["password", "sslpassword"]);

/**
 * A database URL fit to print: the password in the userinfo and any `password` or `sslpassword`
 * query parameter (in any case) replaced by `***`. Text that is not a URL is not printed at all.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    for (const key of new Set(parsed.searchParams.keys())) {
      if (SECRET_PARAMS.has(key.toLowerCase())) parsed.searchParams.set(key, "***");
    }
    return parsed.toString();
  } catch {
    return "DATABASE_URL";
  }
}
