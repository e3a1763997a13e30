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

/** What one renewal did. */
export interface LeaseRenewalPass {
  /** Leases it sent to be renewed: every lease the holder had. */
  leases: number;
  /** Of those, the ones the database renewed; the rest were lost (expired and reaped, canceled). */
  held: number;
}

/**
 * A worker's lease renewal: every lease it holds in one statement, every third of the lease, one
 * renewal at a time, from `start()` until stopped. After a failure the next one waits the
 * monitor's backoff instead, like a loop's pass, unless `wake` says the database is back: then
 * at once. Tests call `runOnce()` instead of starting it.
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
  }

  /**
   * One renewal: every lease the holder has now, in one statement, then the holder hears which it
   * still holds. Nothing is sent when it holds none. Throws when the database fails.
   */
  async runOnce(): Promise<LeaseRenewalPass> {
    const leases = this.#holder.leases();
    if (leases.length === 0) return { leases: 0, held: 0 };
    const held = await heartbeatJobs(this.#db, { leases, leaseSeconds: this.#leaseSeconds });
    this.#holder.renewed(leases, held);
    return { leases: leases.length, held: held.size };
  }

  /** Renew every third of the lease until `stop()`. */
  start(): this {
    void this.#run();
    return this;
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
    try {
      // A renewal that sent nothing says nothing about the database.
      if ((await this.runOnce()).leases > 0) this.#monitor?.succeeded();
    } catch (error) {
      this.#events.emit("loop:error", { loop: "worker", error });
      this.#monitor?.failed(error);
    }
  }
}
