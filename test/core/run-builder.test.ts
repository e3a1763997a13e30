import { describe, expect, it } from "vitest";
import {
  JobType,
  StepKey,
  WorkflowRunEnqueueBuilder,
  WorkflowStepEnqueueBuilder,
  WorkflowType,
} from "../../src/core/index.ts";
import { expectCode } from "./helpers.ts";
import { externalStep, jobStep } from "./workflow-fixtures.ts";

const step = (k: string, t = `jobs.${k}`) => WorkflowStepEnqueueBuilder.job(StepKey.parse(k), JobType.parse(t), { k });

describe("WorkflowRunEnqueueBuilder", () => {
  it("builds a run with explicit steps, organization and idempotency key", () => {
    const built = WorkflowRunEnqueueBuilder.new(WorkflowType.parse("reports.monthly"), { month: "2026-01" })
      .organizationId("org-1")
      .idempotencyKey("reports:2026-01")
      .step(step("collect").priority(10))
      .step(externalStep("approve", [["collect", "ON_SUCCESS"]]))
      .step(step("publish").dependsOnSuccess(["approve"]))
      .build();
    expect(built.workflowType).toBe("reports.monthly");
    expect(built.organizationId).toBe("org-1");
    expect(built.idempotencyKey).toBe("reports:2026-01");
    expect(built.metadata).toEqual({ month: "2026-01" });
    expect(built.steps.map((s) => [s.stepKey, s.executionKind])).toEqual([
      ["collect", "JOB"],
      ["approve", "EXTERNAL"],
      ["publish", "JOB"],
    ]);
    expect(built.steps[0]!.priority).toBe(10);
  });

  it("new never throws; a blank workflow type is reported by build", () => {
    const builder = WorkflowRunEnqueueBuilder.new(WorkflowType.unchecked("  "), {}).step(step("a"));
    expectCode(() => builder.build(), "workflow.invalid_dag_workflow_type_blank");
  });

  it("tryNew throws on a blank workflow type at once", () => {
    expectCode(() => WorkflowRunEnqueueBuilder.tryNew(" ", {}), "workflow.invalid_dag_workflow_type_blank");
    expect(WorkflowRunEnqueueBuilder.tryNew("wf", {}).step(step("a")).build().workflowType).toBe("wf");
  });

  it("defers a blank idempotency key and empty steps to build", () => {
    const builder = WorkflowRunEnqueueBuilder.tryNew("wf", {}).idempotencyKey("");
    expectCode(() => builder.build(), "workflow.invalid_dag_idempotency_key_blank");
    builder.clearIdempotencyKey();
    expectCode(() => builder.build(), "workflow.invalid_dag_empty");
  });

  it("clear* resets organization and idempotency key", () => {
    const built = WorkflowRunEnqueueBuilder.tryNew("wf", {})
      .organizationId("o")
      .idempotencyKey("k")
      .clearOrganizationId()
      .clearIdempotencyKey()
      .step(step("a"))
      .build();
    expect(built.organizationId).toBeNull();
    expect(built.idempotencyKey).toBeNull();
  });

  it("runs full validation, including graph errors", () => {
    const base = () => WorkflowRunEnqueueBuilder.tryNew("wf", {});
    expectCode(() => base().step(step("a")).step(step("a")).build(), "workflow.invalid_dag_duplicate_step_key");
    expectCode(
      () =>
        base()
          .step(step("a").dependsOnSuccess(["ghost"]))
          .build(),
      "workflow.invalid_dag_missing_dependency",
    );
    const cycle = expectCode(
      () =>
        base()
          .step(step("a").dependsOnSuccess(["b"]))
          .step(step("b").dependsOnSuccess(["a"]))
          .build(),
      "workflow.invalid_dag_cycle",
    );
    expect(cycle.details.cycle).toEqual(["a", "b", "a"]);
    const result = base().step(step("a").maxAttempts(0)).tryBuild();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.details).toEqual({ stepKey: "a", stepIndex: 0 });
  });

  it("extendSteps appends and setSteps replaces", () => {
    const builder = WorkflowRunEnqueueBuilder.tryNew("wf", {})
      .step(step("a"))
      .extendSteps([step("b"), jobStep("c")]);
    expect(builder.build().steps.map((s) => s.stepKey)).toEqual(["a", "b", "c"]);
    builder.setSteps([step("z")]);
    expect(builder.build().steps.map((s) => s.stepKey)).toEqual(["z"]);
  });

  it("copies steps when added, so later changes do not leak in", () => {
    const stepBuilder = step("a");
    const plain = jobStep("b");
    const builder = WorkflowRunEnqueueBuilder.tryNew("wf", {}).step(stepBuilder).step(plain);
    stepBuilder.priority(99).dependsOnSuccess(["ghost"]);
    plain.priority = 42;
    plain.dependencies.push({ prerequisiteStepKey: "ghost", releaseMode: null });
    const built = builder.build();
    expect(built.steps[0]!.priority).toBeNull();
    expect(built.steps[1]!.priority).toBeNull();
    built.steps[0]!.priority = 7;
    expect(builder.build().steps[0]!.priority).toBeNull();
  });
});
