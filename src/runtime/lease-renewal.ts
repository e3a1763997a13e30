import type { RunledgerDb } from "../store/index.ts";
import { heartbeatJobs, type LeaseIdentity } from "../store/worker.ts";
import type { RuntimeEvents } from "./events.ts";
import { Waker } from "./loop.ts";
import type { LoopMonitor } from "./loop-monitor.ts";

/** What a worker's leases are, and what to do once a renewal says which of them it still holds. */
export interface LeaseHolder<Lease extends LeaseIdentity> {
  /** The leases to renew now (running and queued jobs). */
  leases(): Lease[];
  /** A renewal answered: `held` are the job ids whose leases it renewed, out of `renewed`. */
  renewed(renewed: Lease[], held: ReadonlyMap<string, Date>): void;
}

/**
 * A worker's lease renewal: every lease it holds in one statement, every third of the lease, one
 * renewal at a time, until stopped. After a failure the next one waits the monitor's backoff
 * instead, like a loop's pass, unless `wake` says the database is back: then at once.
 */
export class LeaseRenewal<Lease extends LeaseIdentity> {
  readonly #waker = new Waker();
  readonly #db: RunledgerDb;
  readonly #leaseSeconds: number;
  readonly #holder: LeaseHolder<Lease>;
  readonly #events: RuntimeEvents;
  readonly #monitor: LoopMonitor | undefined;

  constructor(options: {
    db: RunledgerDb;
    leaseSeconds: number;
    holder: LeaseHolder<Lease>;
    events: RuntimeEvents;
    monitor: LoopMonitor | undefined;
  }) {
    this.#db = options.db;
    this.#leaseSeconds = options.leaseSeconds;
    this.#holder = options.holder;
    this.#events = options.events;
    this.#monitor = options.monitor;
    void this.#run();
  }

  /** Renew at once (the database is back). */
  wake(): void {
    this.#waker.wake();
  }

  stop(): void {
    this.#waker.stop();
  }

  async #run(): Promise<void> {
    const everyMs = Math.max(1, Math.floor(this.#leaseSeconds / 3)) * 1000;
    while (!this.#waker.stopped) {
      await this.#waker.wait(this.#monitor?.retryInMs ?? everyMs);
      if (!this.#waker.stopped) await this.#renew();
    }
  }

  async #renew(): Promise<void> {
    const leases = this.#holder.leases();
    if (leases.length === 0) return;
    try {
      const held = await heartbeatJobs(this.#db, { leases, leaseSeconds: this.#leaseSeconds });
      this.#holder.renewed(leases, held);
      this.#monitor?.succeeded();
    } catch (error) {
      this.#events.emit("loop:error", { loop: "worker", error });
      this.#monitor?.failed(error);
    }
  }
}
