import type { RuntimeEvents } from "./events.ts";
import { type ErrorSummary, type RunledgerLogger, summarizeError } from "./logger.ts";

/** Capped exponential backoff of a failing loop. */
export interface LoopBackoff {
  /** Wait after the first failure. Default 1 s. */
  initialMs: number;
  /** Longest wait. Default 15 s. */
  maxMs: number;
}

export const DEFAULT_LOOP_BACKOFF: LoopBackoff = { initialMs: 1000, maxMs: 15_000 };

/** While a loop keeps failing with the same error, it says so again at most this often. */
const REPEAT_LOG_MS = 60_000;

/** How one loop is doing, for `Supervisor.health()`. */
export interface LoopStatus {
  /** `failing` from a failure until the next success. */
  state: "running" | "failing";
  lastSuccessAt: Date | null;
  lastFailureAt: Date | null;
  consecutiveFailures: number;
  lastError: ErrorSummary | null;
  /** The backoff before the next try while failing. */
  retryInMs: number | null;
}

/**
 * Watches one loop: counts consecutive failures, computes the backoff, and reports state changes
 * once — a `loop:state` event and one log line when the loop starts failing, when its error
 * changes, at most once a minute while it goes on, and when it recovers — instead of a line
 * per failure.
 */
export class LoopMonitor {
  readonly name: string;
  readonly #logger: RunledgerLogger;
  readonly #events: RuntimeEvents | undefined;
  readonly #backoff: LoopBackoff;
  #lastSuccessAt: Date | null = null;
  #lastFailureAt: Date | null = null;
  #failingSince = 0;
  #failures = 0;
  #lastError: ErrorSummary | null = null;
  #retryInMs: number | null = null;
  #loggedAt = 0;

  constructor(name: string, options: { logger: RunledgerLogger; events?: RuntimeEvents; backoff?: LoopBackoff }) {
    this.name = name;
    this.#logger = options.logger;
    this.#events = options.events;
    this.#backoff = options.backoff ?? DEFAULT_LOOP_BACKOFF;
  }

  /** A pass of the loop succeeded. */
  succeeded(): void {
    this.#lastSuccessAt = new Date();
    if (this.#failures === 0) return;
    const failures = this.#failures;
    const downMs = Date.now() - this.#failingSince;
    const error = this.#lastError!;
    this.#failures = 0;
    this.#retryInMs = null;
    const what = error.code === "db.connection_failed" ? "reconnected" : "recovered";
    this.#logger.info(
      { loop: this.name, failures, downMs, lastCode: error.code },
      `${this.name}: ${what} after ${seconds(downMs)} (${failures} failed ${failures === 1 ? "attempt" : "attempts"})`,
    );
    this.#events?.emit("loop:state", {
      loop: this.name,
      state: "recovered",
      failures,
      downMs,
      ...error,
      retryInMs: null,
    });
  }

  /** A pass failed: returns how long to wait before the next one. */
  failed(thrown: unknown): number {
    const error = summarizeError(thrown);
    const now = Date.now();
    this.#lastFailureAt = new Date(now);
    if (this.#failures === 0) this.#failingSince = now;
    this.#failures++;
    const { initialMs, maxMs } = this.#backoff;
    const delay = Math.min(maxMs, initialMs * 2 ** Math.min(this.#failures - 1, 30));
    this.#retryInMs = delay;
    const changed = this.#failures === 1 || error.code !== this.#lastError?.code;
    this.#lastError = error;
    if (!changed && now - this.#loggedAt < REPEAT_LOG_MS) return delay;
    this.#loggedAt = now;
    const what = error.code === "db.connection_failed" ? "database unreachable" : "failing";
    const state = changed
      ? what
      : `still ${what} after ${this.#failures} attempts over ${seconds(now - this.#failingSince)}`;
    this.#logger.warn(
      { loop: this.name, code: error.code, error: error.message, failures: this.#failures, retryInMs: delay },
      `${this.name}: ${state} (${error.code}), retrying in ${seconds(delay)}`,
    );
    this.#events?.emit("loop:state", {
      loop: this.name,
      state: "failing",
      failures: this.#failures,
      downMs: now - this.#failingSince,
      ...error,
      retryInMs: delay,
    });
    return delay;
  }

  /** Between a failure and the next success. */
  get failing(): boolean {
    return this.#failures > 0;
  }

  /** The backoff before the next try while failing; null otherwise. */
  get retryInMs(): number | null {
    return this.#retryInMs;
  }

  status(): LoopStatus {
    return {
      state: this.#failures > 0 ? "failing" : "running",
      lastSuccessAt: this.#lastSuccessAt,
      lastFailureAt: this.#lastFailureAt,
      consecutiveFailures: this.#failures,
      lastError: this.#lastError,
      retryInMs: this.#retryInMs,
    };
  }
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${Math.round(ms / 100) / 10} s` : `${Math.round(ms / 1000)} s`;
}

/** Wait `ms`, or less if `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
