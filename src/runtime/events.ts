import type { JobFailureKind } from "../core/index.ts";

/** What a job event tells about the job. */
export interface JobEventInfo {
  jobId: string;
  jobType: string;
  runNumber: number;
  attempt: number;
  workerId: string;
}

/** Every event the runtime emits, by name; the one observability surface. */
export interface RuntimeEventMap {
  "job:claimed": JobEventInfo;
  "job:succeeded": JobEventInfo & { durationMs: number };
  "job:failed": JobEventInfo & { kind: JobFailureKind; code: string; durationMs: number; nextRunAt: Date };
  "job:dead_lettered": JobEventInfo & { kind: JobFailureKind; code: string; durationMs: number | null };
  /** The handler's signal was aborted: timeout, cancellation, lease loss or shutdown. */
  "job:aborted": JobEventInfo & { reason: AbortReason };
  /** A result could not be recorded (the lease was lost meanwhile, or the database failed). */
  "job:completion_failed": JobEventInfo & { code: string; message: string };
  /** A retention pass deleted finished jobs or workflow runs (`rows`: with their ledger). */
  "retention:purged": { jobs: number; workflowRuns: number; rows: number };
  "reaper:reaped": { processed: number; released: number; retried: number; deadLettered: number; deferred: number };
  /** A schedule slot became a job; `scheduledFor` is the slot's cron time. */
  "scheduler:fired": { scheduleId: string; scheduleName: string; jobId: string; scheduledFor: Date };
  /** A pass skipped slots of a schedule: older than its catch-up window, or by its overlap policy. */
  "scheduler:skipped": { scheduleId: string; scheduleName: string; missed: number; overlapSkipped: number };
  "loop:error": { loop: LoopName; error: unknown };
  /**
   * The worker gets no notifications and finds work by polling alone: its handle is pooled and has
   * no direct LISTEN connection (`createDb(url, { pooled: true })` without `listenUrl`). Once per run.
   */
  "worker:polling": { reason: "no_listen_connection"; pollIntervalMs: number };
  /**
   * A loop started failing (`failing`: its first failure, a different error, or once a minute
   * while it goes on) or succeeded again (`recovered`). `code` and `message` never carry SQL.
   */
  "loop:state": {
    loop: string;
    state: "failing" | "recovered";
    code: string;
    message: string;
    /** Consecutive failures so far (for `recovered`: before the success). */
    failures: number;
    /** How long it has been failing. */
    downMs: number;
    retryInMs: number | null;
  };
}

export type RuntimeEventName = keyof RuntimeEventMap;
export type LoopName = "worker" | "scheduler" | "reaper" | "retention";
export type AbortReason = "timeout" | "canceled" | "lease_lost" | "shutdown";

type Listener<K extends RuntimeEventName> = (event: RuntimeEventMap[K]) => void;

/** A small typed event emitter; a throwing listener never disturbs the runtime. */
export class RuntimeEvents {
  readonly #listeners = new Map<RuntimeEventName, Set<Listener<never>>>();

  on<K extends RuntimeEventName>(name: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(name, set);
    }
    set.add(listener as Listener<never>);
    return () => this.off(name, listener);
  }

  off<K extends RuntimeEventName>(name: K, listener: Listener<K>): void {
    this.#listeners.get(name)?.delete(listener as Listener<never>);
  }

  emit<K extends RuntimeEventName>(name: K, event: RuntimeEventMap[K]): void {
    const set = this.#listeners.get(name);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as Listener<K>)(event);
      } catch {
        // Observers must not break the loops they observe.
      }
    }
  }

  /** Whether anyone listens; lets hot paths skip building event objects. */
  has(name: RuntimeEventName): boolean {
    return (this.#listeners.get(name)?.size ?? 0) > 0;
  }
}
