import { describe, expectTypeOf, test } from "vitest";
import type {
  ErrorCode,
  JobDeadLetterReason,
  JobEventType,
  JobFailureKind,
  JobStage,
  JobStatus,
  WorkflowDependencyReleaseMode,
  WorkflowRunStatus,
  WorkflowStepExecutionKind,
  WorkflowStepStatus,
} from "../../src/core/index.ts";

function assertNever(value: never): never {
  throw new Error(`unexpected ${String(value)}`);
}

/** Each switch must name every member, or `assertNever` stops compiling. */
function describeJobStatus(status: JobStatus): string {
  switch (status) {
    case "PENDING":
    case "LEASED":
      return "live";
    case "SUCCEEDED":
    case "DEAD_LETTERED":
    case "CANCELED":
      return "terminal";
    default:
      return assertNever(status);
  }
}

function describeFailureKind(kind: JobFailureKind): boolean {
  switch (kind) {
    case "RETRYABLE":
    case "TIMEOUT":
    case "LEASE_EXPIRED":
      return true;
    case "TERMINAL":
    case "PANICKED":
      return false;
    default:
      return assertNever(kind);
  }
}

function describeRunStatus(status: WorkflowRunStatus): boolean {
  switch (status) {
    case "RUNNING":
    case "WAITING_FOR_EXTERNAL":
      return false;
    case "SUCCEEDED":
    case "COMPLETED_WITH_ERRORS":
    case "CANCELED":
      return true;
    default:
      return assertNever(status);
  }
}

function describeStepStatus(status: WorkflowStepStatus): boolean {
  switch (status) {
    case "BLOCKED":
    case "WAITING_FOR_EXTERNAL":
    case "ENQUEUED":
    case "RUNNING":
      return false;
    case "SUCCEEDED":
    case "FAILED":
    case "CANCELED":
      return true;
    default:
      return assertNever(status);
  }
}

function describeStage(stage: JobStage): number {
  switch (stage) {
    case "queued":
      return 0;
    case "scheduled":
      return 1;
    case "running":
      return 2;
    case "completed":
      return 3;
    default:
      return assertNever(stage);
  }
}

function describeReason(reason: JobDeadLetterReason): number {
  switch (reason) {
    case "FAILURE_KIND_NON_RETRYABLE":
    case "ATTEMPTS_EXHAUSTED":
    case "LEASE_EXPIRED":
      return 1;
    default:
      return assertNever(reason);
  }
}

describe("status unions", () => {
  test("are exhaustive string unions", () => {
    expectTypeOf(describeJobStatus).parameter(0).toEqualTypeOf<JobStatus>();
    expectTypeOf(describeFailureKind).parameter(0).toEqualTypeOf<JobFailureKind>();
    expectTypeOf(describeRunStatus).parameter(0).toEqualTypeOf<WorkflowRunStatus>();
    expectTypeOf(describeStepStatus).parameter(0).toEqualTypeOf<WorkflowStepStatus>();
    expectTypeOf(describeStage).parameter(0).toEqualTypeOf<JobStage>();
    expectTypeOf(describeReason).parameter(0).toEqualTypeOf<JobDeadLetterReason>();
    expectTypeOf<WorkflowDependencyReleaseMode>().toEqualTypeOf<"ON_TERMINAL" | "ON_SUCCESS">();
    expectTypeOf<WorkflowStepExecutionKind>().toEqualTypeOf<"JOB" | "EXTERNAL">();
    expectTypeOf<JobEventType>().toExtend<string>();
  });

  test("a missing case does not compile", () => {
    function incomplete(status: JobStatus): string {
      switch (status) {
        case "PENDING":
          return "p";
        default:
          // @ts-expect-error LEASED, SUCCEEDED, DEAD_LETTERED and CANCELED are not handled
          return assertNever(status);
      }
    }
    void incomplete;
  });

  test("error codes are a closed union", () => {
    expectTypeOf<"workflow.invalid_dag_cycle">().toExtend<ErrorCode>();
    expectTypeOf<"workflow.no_such_code">().not.toExtend<ErrorCode>();
  });
});
