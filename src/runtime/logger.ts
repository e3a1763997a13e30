import { RunledgerError } from "../core/index.ts";
import { toQueryError } from "../store/index.ts";

/** Structured fields of a log line. */
export type LogFields = Record<string, unknown>;

/**
 * What the Supervisor logs through: fields first, then the message — pino's signature, and
 * `console` prints both. Lines carry error codes and catalog messages only, never SQL or
 * parameters.
 */
export interface RunledgerLogger {
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

/** The default logger: one line per event on stderr, `runledger <level>: <message> <fields as JSON>`. */
export const stderrLogger: RunledgerLogger = {
  info: (fields, message) => writeLine("info", fields, message),
  warn: (fields, message) => writeLine("warn", fields, message),
  error: (fields, message) => writeLine("error", fields, message),
};

function writeLine(level: string, fields: LogFields, message: string): void {
  process.stderr.write(`runledger ${level}: ${message} ${JSON.stringify(fields)}\n`);
}

/** A logger that drops everything. */
export const silentLogger: RunledgerLogger = { info() {}, warn() {}, error() {} };

/** An error as it may be logged: a stable code and a message without SQL or parameters. */
export interface ErrorSummary {
  code: string;
  message: string;
}

/**
 * The loggable part of anything a loop threw. Runledger errors give their code and catalog
 * message; driver and query-builder errors (whose messages quote the statement and its
 * parameters) are translated first; any other error gives its name only.
 */
export function summarizeError(error: unknown): ErrorSummary {
  if (error instanceof RunledgerError) return { code: error.code, message: error.message };
  if (hasDriverCode(error)) {
    const translated = toQueryError(error);
    return { code: translated.code, message: translated.message };
  }
  const name = error instanceof Error ? error.name : typeof error;
  return { code: "runtime.unexpected_error", message: `A loop failed with ${name}.` };
}

function hasDriverCode(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current != null && typeof current === "object"; depth++) {
    if (typeof (current as { code?: unknown }).code === "string") return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
