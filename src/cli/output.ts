import { RunledgerError } from "../core/index.ts";

/*
 * How every command speaks: tables and lines for a person (fitted to the terminal, 80 columns
 * when stdout is not one), one JSON document for a program (`--json`), and exit codes a script
 * can branch on.
 */

/** Exit codes: 0 ok, 1 failure or something wrong found, 2 usage (bad flag, bad id, missing URL). */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Bad input on the command line: the command exits 2 with this message, having changed nothing. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Where a command writes (the real streams, or a buffer in a test). */
export interface Output {
  write(text: string): void;
  error(text: string): void;
  /** Columns a table may use. */
  width: number;
}

export const processOutput: Output = {
  write: (text) => void process.stdout.write(text),
  error: (text) => void process.stderr.write(text),
  width: process.stdout.isTTY === true ? Math.max(60, process.stdout.columns ?? 80) : 80,
};

/** One JSON document on its own line; dates as ISO strings. */
export function json(out: Output, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** An error's stable code (RunledgerError) and a message without SQL or parameters. */
export function describeError(error: unknown): { code: string; message: string } {
  if (error instanceof UsageError) return { code: "usage", message: error.message };
  if (error instanceof RunledgerError) return { code: error.code, message: error.internalMessage() };
  return { code: "error", message: error instanceof Error ? error.message : String(error) };
}

export type Align = "left" | "right";

/**
 * A table fitted to `width` columns: every column as wide as its widest cell, and when the row
 * is too wide the widest columns are cut (with `…`) until it fits, except the first column
 * (an id or a name to copy), which is never cut.
 */
export function table(out: Output, headers: string[], rows: string[][], align: Align[] = []): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const total = () => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
  while (total() > out.width) {
    const cuttable = widths.slice(1);
    const widest = 1 + cuttable.indexOf(Math.max(...cuttable));
    if (widths[widest]! <= 8) break;
    widths[widest]!--;
  }
  const cell = (text: string, i: number) => {
    const w = widths[i]!;
    const cut = text.length > w ? `${text.slice(0, w - 1)}…` : text;
    return align[i] === "right" ? cut.padStart(w) : cut.padEnd(w);
  };
  const line = (cells: string[]) => `${cells.map(cell).join("  ").trimEnd()}\n`;
  out.write(line(headers));
  for (const row of rows) out.write(line(row));
}

/** `1,234` */
export const num = (n: number) => n.toLocaleString("en-US");

/** A capped count: `10,000+` when it stopped at its cap. */
export const capped = (c: { count: number; capped: boolean }) => `${num(c.count)}${c.capped ? "+" : ""}`;

/** `45s`, `3m 05s`, `2h 10m`, `3d 4h` */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** A time as `2026-12-03 18:20:04Z`, or `-`. */
export function time(date: Date | null | undefined): string {
  if (date === null || date === undefined) return "-";
  return `${date.toISOString().slice(0, 19).replace("T", " ")}Z`;
}

/** How long ago, by this machine's clock: `3m 05s ago`. */
export function ago(date: Date | null | undefined, now = Date.now()): string {
  if (date === null || date === undefined) return "-";
  const ms = now - date.getTime();
  return ms < 0 ? `in ${duration(-ms)}` : `${duration(ms)} ago`;
}

/** A time in a table: `12-03 18:20:04` (UTC). */
export function shortTime(date: Date | null | undefined): string {
  if (date === null || date === undefined) return "-";
  return date.toISOString().slice(5, 19).replace("T", " ");
}

/** How old, compactly: `2m 08s`. */
export const age = (date: Date, now = Date.now()) => duration(now - date.getTime());
