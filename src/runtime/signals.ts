import type { ShutdownReport, Supervisor } from "./supervisor.ts";

export interface ShutdownOnSignalsOptions {
  /** Signals that start a graceful shutdown. Default SIGINT and SIGTERM. */
  signals?: readonly NodeJS.Signals[];
  /** How long running handlers may take after the first signal. Default 30,000 ms. */
  timeoutMs?: number;
  /** How long they may take after a second signal, counted from it (never longer than before). Default 5,000 ms. */
  secondSignalTimeoutMs?: number;
  /** Where the one line per signal goes. Default stdout. */
  log?: (line: string) => void;
}

/** Process signals turned into a supervisor's graceful shutdown; see `shutdownOnSignals`. */
export interface ShutdownSignals extends Disposable {
  /** Aborts at the first signal; its `reason` is the signal's name. */
  readonly signal: AbortSignal;
  /**
   * `supervisor.runUntilShutdown` until the first signal, with `timeoutMs` for running handlers,
   * cut to `secondSignalTimeoutMs` by a second signal. Stops listening once the shutdown is over.
   * Rejects as `runUntilShutdown` does: treat that as fatal.
   */
  run(supervisor: Supervisor): Promise<ShutdownReport>;
  /** Stop listening (`run` does it when it settles). */
  close(): void;
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/**
 * Listen for SIGINT and SIGTERM now, so a signal during start-up (migrations, syncing
 * definitions) is not lost, and turn them into a graceful shutdown of a supervisor:
 *
 *     const shutdown = shutdownOnSignals();
 *     // … start-up …
 *     await shutdown.run(supervisor);
 *
 * The first signal stops claiming and lets running handlers finish for up to `timeoutMs`. The
 * listeners stay installed until the shutdown is over, so a second signal never kills the process
 * mid-job (a terminal's Ctrl-C reaches both `npx tsx` and the program it relays signals to, so
 * one keypress can arrive twice): it cuts what is left to `secondSignalTimeoutMs`, and says so.
 * Handlers still running at the deadline are aborted and their jobs retried.
 */
export function shutdownOnSignals(options: ShutdownOnSignalsOptions = {}): ShutdownSignals {
  const signals = options.signals ?? ["SIGINT", "SIGTERM"];
  const timeoutMs = options.timeoutMs ?? 30_000;
  const shortMs = Math.min(options.secondSignalTimeoutMs ?? 5_000, timeoutMs);
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const controller = new AbortController();
  let received = 0;
  let supervisor: Supervisor | undefined;

  const onSignal = (name: NodeJS.Signals) => {
    received++;
    if (received === 1) {
      log(
        `${name} received, shutting down (running jobs get ${seconds(timeoutMs)}; send it again to give them ${seconds(shortMs)})`,
      );
      controller.abort(name);
      return;
    }
    log(`${name} received again: running jobs get at most ${seconds(shortMs)} more, then are abandoned and retried`);
    supervisor?.shortenShutdown(shortMs);
  };
  for (const name of signals) process.on(name, onSignal);
  const close = () => {
    for (const name of signals) process.off(name, onSignal);
  };

  return {
    signal: controller.signal,
    async run(target) {
      supervisor = target;
      try {
        // A second signal during start-up already asked for the short deadline.
        return await target.runUntilShutdown(controller.signal, received > 1 ? shortMs : timeoutMs);
      } finally {
        close();
      }
    },
    close,
    [Symbol.dispose]: close,
  };
}
