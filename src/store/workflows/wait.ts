import type { SQL } from "drizzle-orm";
import { type OrganizationScope, RunledgerError, type WorkflowRunStatus } from "../../core/index.ts";
import type { RunledgerDb, Subscription } from "../db.ts";
import { translating } from "../errors.ts";
import { RUN_TERMINAL_CHANNEL } from "../notify.ts";
import { queryRows } from "../query.ts";
import { scopeCondition } from "../sql/scope.ts";
import { runById, runOrganization } from "../sql/workflows/reads.ts";
import type { WorkflowRunRow } from "../sql/workflows/rows.ts";
import { fail, isUuid } from "../validate.ts";
import { runFromRow, type WorkflowRunRecord } from "./records.ts";

export interface WaitForWorkflowRunOptions {
  /** The organization the run must belong to, or `ALL_ORGANIZATIONS`. */
  scope: OrganizationScope;
  /** Stop waiting (`workflow.run_wait_aborted`, the signal's reason as `cause`). */
  signal?: AbortSignal;
  /** Give up after this long (`workflow.run_wait_timeout`); default 5 minutes, `Infinity` for never. */
  timeoutMs?: number;
  /** How often to look without a notification (a lost one, a broken LISTEN); default 1,000 ms. */
  pollIntervalMs?: number;
}

const TERMINAL: readonly WorkflowRunStatus[] = ["SUCCEEDED", "COMPLETED_WITH_ERRORS", "CANCELED"];
export const DEFAULT_RUN_WAIT_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_POLL_INTERVAL_MS = 1_000;

function checkDuration(value: unknown, field: string, fallback: number, allowInfinity: boolean): number {
  if (value === undefined) return fallback;
  const ok =
    typeof value === "number" &&
    !Number.isNaN(value) &&
    (Number.isFinite(value) ? value > 0 && value <= 2_147_483_647 : allowInfinity && value > 0);
  if (!ok) fail("workflow.run_wait_invalid_options", { field });
  return value as number;
}

/**
 * Wait until a workflow run is finished — SUCCEEDED, COMPLETED_WITH_ERRORS or CANCELED — and
 * return it. Woken by the notification the statement that finishes a run sends (LISTEN on
 * `runledger_workflow_run_terminal`), and looking every `pollIntervalMs` as well, so a lost
 * notification only delays it. A run that has finished already returns at once; a run retried
 * later is not waited for again. `workflow.run_not_found` for a run that does not exist or that
 * `scope` does not see (also when it is deleted while waited for), `workflow.run_wait_timeout`
 * after `timeoutMs`, `workflow.run_wait_aborted` when `signal` aborts.
 *
 * Takes the database handle, not a transaction: a transaction would not see the run finish.
 */
export async function waitForWorkflowRun(
  db: RunledgerDb,
  workflowRunId: string,
  options: WaitForWorkflowRunOptions,
): Promise<WorkflowRunRecord> {
  const visible = scopeCondition(runOrganization, options?.scope);
  const timeoutMs = checkDuration(options.timeoutMs, "timeoutMs", DEFAULT_RUN_WAIT_TIMEOUT_MS, true);
  const pollIntervalMs = checkDuration(options.pollIntervalMs, "pollIntervalMs", DEFAULT_POLL_INTERVAL_MS, false);
  const { signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    fail("workflow.run_wait_invalid_options", { field: "signal" });
  if (!isUuid(workflowRunId)) fail("workflow.run_not_found");
  if (signal?.aborted) throw aborted(signal);
  return new RunWaiter(db, workflowRunId, visible, signal, timeoutMs, pollIntervalMs).wait();
}

function aborted(signal: AbortSignal): RunledgerError {
  return new RunledgerError("workflow.run_wait_aborted", { cause: signal.reason });
}

/** One wait: a LISTEN subscription, a poll timer, a deadline and the caller's signal, all undone when it settles. */
class RunWaiter {
  readonly #db: RunledgerDb;
  readonly #runId: string;
  readonly #visible: SQL;
  readonly #signal: AbortSignal | undefined;
  readonly #timeoutMs: number;
  readonly #pollIntervalMs: number;
  #resolve!: (run: WorkflowRunRecord) => void;
  #reject!: (error: unknown) => void;
  #settled = false;
  #checking = false;
  #again = false;
  #subscription: Subscription | undefined;
  #poll: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  readonly #onAbort = () => this.#finish(aborted(this.#signal!));

  constructor(
    db: RunledgerDb,
    runId: string,
    visible: SQL,
    signal: AbortSignal | undefined,
    timeoutMs: number,
    pollIntervalMs: number,
  ) {
    this.#db = db;
    this.#runId = runId;
    this.#visible = visible;
    this.#signal = signal;
    this.#timeoutMs = timeoutMs;
    this.#pollIntervalMs = pollIntervalMs;
  }

  wait(): Promise<WorkflowRunRecord> {
    const result = new Promise<WorkflowRunRecord>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    if (Number.isFinite(this.#timeoutMs)) {
      this.#deadline = setTimeout(
        () =>
          this.#finish(new RunledgerError("workflow.run_wait_timeout", { details: { timeoutMs: this.#timeoutMs } })),
        this.#timeoutMs,
      );
    }
    this.#poll = setInterval(() => this.#check(), this.#pollIntervalMs);
    this.#subscribe();
    return result;
  }

  /** Listen first, then look: a run finishing in between is seen by the look or announced. */
  #subscribe(): void {
    this.#db.$runledger
      .listen(
        RUN_TERMINAL_CHANNEL,
        (payload) => {
          if (payload === "" || payload.split(",").includes(this.#runId)) this.#check();
        },
        // Also on every re-established connection: notifications sent while it was down are lost.
        () => this.#check(),
      )
      .then(
        (subscription) => {
          if (this.#settled) subscription.unlisten().catch(() => {});
          else this.#subscription = subscription;
        },
        // No notifications (the connection refused LISTEN): polling alone still finds the run.
        () => this.#check(),
      );
  }

  async #check(): Promise<void> {
    if (this.#settled) return;
    if (this.#checking) {
      this.#again = true;
      return;
    }
    this.#checking = true;
    try {
      do {
        this.#again = false;
        const [row] = await translating(() => queryRows<WorkflowRunRow>(this.#db, runById(this.#runId, this.#visible)));
        if (row === undefined) this.#finish(new RunledgerError("workflow.run_not_found"));
        else if (TERMINAL.includes(row.status)) this.#finish(undefined, runFromRow(row));
      } while (this.#again && !this.#settled);
    } catch (error) {
      this.#finish(error);
    } finally {
      this.#checking = false;
    }
  }

  #finish(error: unknown, run?: WorkflowRunRecord): void {
    if (this.#settled) return;
    this.#settled = true;
    clearInterval(this.#poll);
    clearTimeout(this.#deadline);
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#subscription?.unlisten().catch(() => {});
    if (run !== undefined) this.#resolve(run);
    else this.#reject(error);
  }
}
