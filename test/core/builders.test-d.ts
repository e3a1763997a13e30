import { describe, expectTypeOf, test } from "vitest";
import {
  JobFailure,
  type JobHandler,
  type JobProgress,
  JobType,
  type Result,
  type RunledgerError,
  StepKey,
  WorkflowDagBuilder,
  type WorkflowRunEnqueue,
  WorkflowRunEnqueueBuilder,
  type WorkflowStepEnqueue,
  WorkflowStepEnqueueBuilder,
  WorkflowType,
} from "../../src/core/index.ts";

describe("branded identifiers", () => {
  test("are strings but plain strings are not identifiers", () => {
    expectTypeOf(JobType.parse("a")).toExtend<string>();
    expectTypeOf<string>().not.toExtend<JobType>();
    expectTypeOf<StepKey>().not.toExtend<JobType>();
    expectTypeOf<JobType>().not.toExtend<WorkflowType>();
    expectTypeOf(StepKey.tryParse("a")).toEqualTypeOf<Result<StepKey>>();
  });
});

describe("WorkflowDagBuilder", () => {
  test("is fluent and builds a WorkflowRunEnqueue", () => {
    const builder = WorkflowDagBuilder.new("wf", {}).job("a", "t", null).afterSuccess("a", []);
    expectTypeOf(builder).toEqualTypeOf<WorkflowDagBuilder>();
    expectTypeOf(builder.build()).toEqualTypeOf<WorkflowRunEnqueue>();
    expectTypeOf(builder.tryBuild()).toEqualTypeOf<Result<WorkflowRunEnqueue, RunledgerError>>();
  });

  test("rejects wrong argument types", () => {
    // @ts-expect-error the workflow type is a string
    WorkflowDagBuilder.new(42, {});
    // @ts-expect-error the job type is a string
    WorkflowDagBuilder.new("wf", {}).job("a", 1, null);
    // @ts-expect-error prerequisites are an array, not one key
    WorkflowDagBuilder.new("wf", {}).afterSuccess("b", "a");
    // @ts-expect-error prerequisites are step keys
    WorkflowDagBuilder.new("wf", {}).afterTerminal("b", [1]);
    // @ts-expect-error the idempotency key is a string (use clearIdempotencyKey to unset it)
    WorkflowDagBuilder.new("wf", {}).idempotencyKey(null);
    // @ts-expect-error checkJobType receives the job type
    WorkflowDagBuilder.new("wf", {}, { checkJobType: (jobType: number) => void jobType });
    // @ts-expect-error builders are created with new()/tryNew(), not the constructor
    new WorkflowDagBuilder("wf", {});
  });
});

describe("WorkflowStepEnqueueBuilder", () => {
  test("job() and external() take branded identifiers; tryJob() takes raw strings", () => {
    WorkflowStepEnqueueBuilder.job(StepKey.parse("s"), JobType.parse("t"), null);
    WorkflowStepEnqueueBuilder.tryJob("s", "t", null);
    // @ts-expect-error a raw string is not a StepKey
    WorkflowStepEnqueueBuilder.job("s", JobType.parse("t"), null);
    // @ts-expect-error a StepKey is not a JobType
    WorkflowStepEnqueueBuilder.job(StepKey.parse("s"), StepKey.parse("t"), null);
    // @ts-expect-error a raw string is not a StepKey
    WorkflowStepEnqueueBuilder.external("g", null);
  });

  test("setters check their value types", () => {
    const step = WorkflowStepEnqueueBuilder.tryJob("s", "t", null);
    expectTypeOf(step.priority(1).stage("running")).toEqualTypeOf<WorkflowStepEnqueueBuilder>();
    expectTypeOf(step.build()).toEqualTypeOf<WorkflowStepEnqueue>();
    // @ts-expect-error stages are the JobStage union
    step.stage("paused");
    // @ts-expect-error priorities are numbers
    step.priority("1");
    // @ts-expect-error max attempts are numbers
    step.maxAttempts(null);
    // @ts-expect-error release modes are ON_SUCCESS, ON_TERMINAL or null
    step.dependency({ prerequisiteStepKey: "a", releaseMode: "ON_FAILURE" });
    // @ts-expect-error a dependency spec needs its release mode (null for ON_TERMINAL)
    step.dependency({ prerequisiteStepKey: "a" });
  });
});

describe("WorkflowRunEnqueueBuilder", () => {
  test("new() takes a WorkflowType; steps are builders or plain steps", () => {
    const run = WorkflowRunEnqueueBuilder.new(WorkflowType.parse("wf"), {});
    run.step(WorkflowStepEnqueueBuilder.tryJob("s", "t", null));
    expectTypeOf(run.tryBuild()).toEqualTypeOf<Result<WorkflowRunEnqueue>>();
    // @ts-expect-error a raw string is not a WorkflowType (use tryNew)
    WorkflowRunEnqueueBuilder.new("wf", {});
    // @ts-expect-error a step needs its full shape
    run.step({ stepKey: "s" });
  });
});

describe("handler contract", () => {
  test("handlers may return nothing or a completed JobProgress", () => {
    const handler: JobHandler<{ to: string }> = {
      jobType: "mail.send",
      async execute(context, payload) {
        expectTypeOf(payload.to).toEqualTypeOf<string>();
        expectTypeOf(context.signal).toEqualTypeOf<AbortSignal>();
        expectTypeOf(context.organizationId).toEqualTypeOf<string | null>();
      },
    };
    // biome-ignore lint/suspicious/noConfusingVoidType: the contract itself is `Promise<void | JobProgress>`.
    expectTypeOf(handler.execute).returns.toEqualTypeOf<Promise<void | JobProgress>>();
    const progress: JobProgress = { stage: "completed", progressDone: 1 };
    expectTypeOf(progress.stage).toEqualTypeOf<"completed">();
    // @ts-expect-error completion progress can only be "completed"
    const running: JobProgress = { stage: "running" };
    void running;
    expectTypeOf(JobFailure.from(new Error("x"))).toEqualTypeOf<JobFailure>();
  });
});
