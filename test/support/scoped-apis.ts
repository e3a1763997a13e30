import type { SQL } from "drizzle-orm";
import type { OrganizationScope } from "../../src/core/index.ts";
import type * as store from "../../src/store/index.ts";

/*
 * Which functions of `runledger/store` are organization-scoped, found from their types: a
 * function is scoped when one of its parameters is, or holds (in a property, up to three levels
 * deep), a scope slot — a type that accepts every `OrganizationScope` and nothing else. Names do
 * not matter: a scope under any property name counts, and an `organizationId` that is data (the
 * organization a new job is created in) does not.
 */

type Store = typeof store;

/** True for `any`, which would otherwise look like a slot (it accepts everything). */
type IsAny<T> = 0 extends 1 & T ? true : false;

/** A scope slot: accepts every `OrganizationScope` and only those (null and undefined aside). */
type IsSlot<T> =
  IsAny<T> extends true
    ? false
    : [OrganizationScope] extends [T]
      ? [T] extends [OrganizationScope | null | undefined]
        ? true
        : false
      : false;

/** Types not worth walking into: an executor, SQL fragments, functions, dates. */
type Opaque = store.Executor | SQL | Date | RegExp | AbortSignal | ((...args: never[]) => unknown);

/** Whether `T` is or holds a scope slot, at most `3 - Depth["length"]` properties down. */
type Holds<T, Depth extends 0[] = []> =
  IsAny<T> extends true
    ? false
    : IsSlot<T> extends true
      ? true
      : Depth["length"] extends 3
        ? false
        : T extends Opaque
          ? false
          : T extends readonly (infer E)[]
            ? Holds<E, [...Depth, 0]>
            : T extends object
              ? true extends { [K in keyof T]-?: Holds<T[K], [...Depth, 0]> }[keyof T]
                ? true
                : false
              : false;

/** `K` is an optional key of `T` (`{}` accepts a type whose only key is optional). */
// biome-ignore lint/complexity/noBannedTypes: `{}` here is the empty object, which tells an optional key apart.
type IsOptionalKey<T, K extends keyof T> = {} extends Pick<T, K> ? true : false;

/** A scope slot callers may leave out: an optional parameter, or an optional property of one. */
type OmittableSlot<T> =
  IsSlot<T> extends true
    ? undefined extends T
      ? true
      : false
    : T extends Opaque
      ? false
      : T extends object
        ? true extends {
            [K in keyof T]-?: IsOptionalKey<T, K> extends true ? IsSlot<Exclude<T[K], undefined>> : false;
          }[keyof T]
          ? true
          : false
        : false;

type AnyParameter<P extends readonly unknown[], Test extends "holds" | "omittable"> = true extends {
  [I in keyof P]: Test extends "holds" ? Holds<P[I]> : OmittableSlot<P[I]>;
}[number]
  ? true
  : false;

type FunctionsWhere<Test extends "holds" | "omittable"> = {
  [K in keyof Store]: Store[K] extends (...args: infer P) => unknown
    ? AnyParameter<P, Test> extends true
      ? K
      : never
    : never;
}[keyof Store];

/** Every exported function of `runledger/store` that takes an organization scope. */
export type ScopedStoreApi = FunctionsWhere<"holds">;

/** Scoped functions whose scope a caller may omit: none (omitting a scope is a type error). */
export type OmittableScopeApi = FunctionsWhere<"omittable">;

/**
 * The scoped functions by name. `scoped-apis.test-d.ts` asserts this list is exactly
 * `ScopedStoreApi`, and the tenant-isolation test runs every one of them across tenants.
 */
export const SCOPED_STORE_APIS = [
  "appendWorkflowSteps",
  "backfillJobSchedule",
  "cancelJob",
  "cancelJobs",
  "cancelWorkflowRun",
  "completeExternalWorkflowStep",
  "countJobs",
  "countJobsByStatus",
  "countWorkflowRuns",
  "getJobById",
  "getJobMetrics",
  "getJobPayloadByIdempotencyKey",
  "getJobSchedule",
  "getJobThroughput",
  "getJobWorkflowStep",
  "getLatestJobPayloadForRun",
  "getLatestWorkflowRunByType",
  "getOldestDueJob",
  "getWorkflowRunById",
  "getWorkflowRunByIdempotencyKey",
  "getWorkflowRunIdForJob",
  "insertJobLog",
  "listDeadLetters",
  "listJobAttempts",
  "listJobEvents",
  "listJobLogs",
  "listJobSchedules",
  "listJobs",
  "listLeasedJobs",
  "listRecentWorkers",
  "listWorkflowRuns",
  "listWorkflowStepDependencies",
  "listWorkflowStepKeysForUpdate",
  "listWorkflowSteps",
  "purgeFinished",
  "purgeWorkflowRuns",
  "readFinishedWorkflowRuns",
  "readQueueDepth",
  "requeueJob",
  "requeueJobs",
  "retryWorkflowRun",
  "searchJobsAndRuns",
  "setJobScheduleActive",
  "setJobScheduleNextFireAt",
  "updateWorkflowStepAndPendingJobPayload",
  "waitForWorkflowRun",
] as const satisfies readonly ScopedStoreApi[];

export type ListedScopedApi = (typeof SCOPED_STORE_APIS)[number];
