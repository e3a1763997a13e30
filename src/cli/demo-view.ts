import type { WorkflowRunStatus } from "../core/index.ts";
import type { WorkflowStepRecord } from "../store/index.ts";

/*
 * The demo's live view: redrawn in place on a terminal, one line per change otherwise. Every line
 * of a redraw is cut to the terminal's width, because a line that wraps takes two rows and the
 * next redraw, moving up one row per line, would leave stale rows behind.
 */

/** Jobs in the demo's batch. */
export const BATCH_SIZE = 50;

/** What the view shows, refreshed from the database. */
export interface Live {
  runId: string;
  startedAt: number;
  batchDone: number;
  batchFailed: number;
  steps: WorkflowStepRecord[];
  progress: Map<string, { done: number | null; total: number | null }>;
  runStatus: WorkflowRunStatus | undefined;
}

/** Where the view writes: `process.stdout`, or a test's recorder. */
export interface ViewSink {
  write(text: string): unknown;
  /** Columns of the terminal, when it is one. */
  columns?: number;
}

/** Below this width the step lines leave out the job type. */
const WIDE = 64;

export const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function bar(done: number, total: number, width: number): string {
  const filled = total <= 0 ? 0 : Math.round((Math.min(done, total) / total) * width);
  return `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
}

function stepLine(step: WorkflowStepRecord, live: Live, wide: boolean): string {
  const p = step.jobId === null ? undefined : live.progress.get(step.jobId);
  const total = p?.total ?? 0;
  const done = step.status === "SUCCEEDED" ? total : (p?.done ?? 0);
  const gauge = total > 0 ? `${bar(done, total, 12)} ${done}/${total}` : "";
  const type = wide ? ` ${(step.jobType ?? "").padEnd(18)}` : "";
  return `  ${step.stepKey.padEnd(9)}${type} ${step.status.padEnd(10)} ${gauge}`.trimEnd();
}

/**
 * `line` cut to fit `columns` (one column is left free: a line that fills the last column makes
 * some terminals wrap before the newline). Each code point counts as one column: the view writes
 * ASCII and box characters only.
 */
export function fitLine(line: string, columns: number): string {
  const room = Math.max(1, columns - 1);
  const points = Array.from(line);
  return points.length <= room ? line : points.slice(0, room).join("");
}

/** The lines of one frame of the terminal view, each cut to `columns`. */
export function frameLines(live: Live, columns: number, now: number = Date.now()): string[] {
  const wide = columns >= WIDE;
  const batch = `${live.batchDone}/${BATCH_SIZE}`.padEnd(10);
  const lines = [
    `workflow profiles.research  ${live.runStatus ?? "RUNNING"}  ${seconds(now - live.startedAt)}`,
    ...live.steps.map((step) => stepLine(step, live, wide)),
    `  ${"batch".padEnd(9)}${wide ? ` ${"thumbnails.render".padEnd(18)}` : ""} ${batch} ${bar(live.batchDone, BATCH_SIZE, 24)}`,
  ];
  return lines.map((line) => fitLine(line, columns));
}

/**
 * The table printed when the demo ends: each step's status, start and duration; the job type
 * column only when `columns` leave room for it.
 */
export function summaryLines(live: Live, runStartedAt: Date, columns: number): string[] {
  const wide = columns >= WIDE;
  const type = (text: string) => (wide ? ` ${text.padEnd(18)}` : "");
  const lines = ["", `${"step".padEnd(10)}${type("job type")} ${"status".padEnd(10)} ${"started".padEnd(9)} took`];
  for (const step of live.steps) {
    const started = step.startedAt === null ? "-" : `+${seconds(step.startedAt.getTime() - runStartedAt.getTime())}`;
    const took =
      step.startedAt === null || step.finishedAt === null
        ? "-"
        : seconds(step.finishedAt.getTime() - step.startedAt.getTime());
    lines.push(
      `${step.stepKey.padEnd(10)}${type(step.jobType ?? "")} ${step.status.padEnd(10)} ${started.padEnd(9)} ${took}`,
    );
  }
  return lines;
}

/** The live view: redrawn in place on a terminal (`tty`), change lines otherwise. */
export class Progress {
  #drawn = 0;
  #seen = new Map<string, string>();
  #lastBatch = 0;
  readonly sink: ViewSink;
  readonly tty: boolean;

  constructor(sink: ViewSink, tty: boolean) {
    this.sink = sink;
    this.tty = tty;
  }

  render(live: Live): void {
    if (this.tty) {
      // Read the width at every frame: the terminal may have been resized.
      const lines = frameLines(live, this.sink.columns ?? 80);
      const up = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : "";
      this.sink.write(`${up}${lines.map((line) => `\x1b[2K${line}\n`).join("")}`);
      this.#drawn = lines.length;
      return;
    }
    for (const step of live.steps) {
      if (this.#seen.get(step.stepKey) === step.status) continue;
      this.#seen.set(step.stepKey, step.status);
      this.sink.write(`step ${step.stepKey} ${step.status} (+${seconds(Date.now() - live.startedAt)})\n`);
    }
    const tens = Math.floor(live.batchDone / 10) * 10;
    if (tens > this.#lastBatch || (live.batchDone === BATCH_SIZE && this.#lastBatch < BATCH_SIZE)) {
      this.#lastBatch = live.batchDone === BATCH_SIZE ? BATCH_SIZE : tens;
      this.sink.write(`batch ${this.#lastBatch}/${BATCH_SIZE} jobs done (+${seconds(Date.now() - live.startedAt)})\n`);
    }
  }
}
