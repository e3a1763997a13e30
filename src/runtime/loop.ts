import { type LoopMonitor, pause } from "./loop-monitor.ts";

/** How a runtime loop ended: after a shutdown request, or on its own (which a supervisor treats as an error). */
export type RuntimeLoopExit = "shutdown" | "completed";

/** A wake-up latch: `wait(ms)` resolves after `ms` or as soon as `wake()` (or `stop()`) is called. */
export class Waker {
  #pending = false;
  #resolve: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  wake(): void {
    if (this.#resolve === undefined) {
      this.#pending = true;
      return;
    }
    this.#settle();
  }

  stop(): void {
    this.#stopped = true;
    this.wake();
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  wait(ms: number): Promise<void> {
    if (this.#pending || this.#stopped) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#timer = setTimeout(() => this.#settle(), ms);
    });
  }

  #settle(): void {
    const resolve = this.#resolve;
    this.#resolve = undefined;
    this.#pending = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    resolve?.();
  }
}

/** Resolve when `signal` aborts (immediately if it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

/**
 * A ticker around `runOnce`: run, then wait `intervalMs` (or until woken), until `signal`
 * aborts. Errors from `runOnce` are reported and the loop goes on; with a `monitor`, after a
 * failure it waits the monitor's backoff instead (a wake does not cut that short).
 */
export async function tick(
  runOnce: () => Promise<unknown>,
  options: {
    intervalMs: number;
    signal: AbortSignal;
    waker?: Waker;
    onError: (error: unknown) => void;
    monitor?: LoopMonitor;
  },
): Promise<RuntimeLoopExit> {
  const waker = options.waker ?? new Waker();
  const stop = () => waker.stop();
  options.signal.addEventListener("abort", stop, { once: true });
  try {
    while (!options.signal.aborted) {
      let backoffMs: number | undefined;
      try {
        await runOnce();
        options.monitor?.succeeded();
      } catch (error) {
        options.onError(error);
        backoffMs = options.monitor?.failed(error);
      }
      if (options.signal.aborted) break;
      if (backoffMs !== undefined) await pause(backoffMs, options.signal);
      else await waker.wait(options.intervalMs);
    }
    return "shutdown";
  } finally {
    options.signal.removeEventListener("abort", stop);
  }
}
