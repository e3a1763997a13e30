import { describe, expect, it } from "vitest";
import { JobType, StepKey, WorkflowStepEnqueueBuilder } from "../../src/core/index.ts";
import { expectCode } from "./helpers.ts";

const key = StepKey.parse;
const type = JobType.parse;

describe("WorkflowStepEnqueueBuilder", () => {
  it("job() makes a JOB step with stage queued and nothing else set", () => {
    expect(WorkflowStepEnqueueBuilder.job(key("crawl"), type("profiles.crawl"), { id: 1 }).build()).toStrictEqual({
      stepKey: "crawl",
      executionKind: "JOB",
      jobType: "profiles.crawl",
      organizationId: null,
      payload: { id: 1 },
      priority: null,
      maxAttempts: null,
      timeoutSeconds: null,
      stage: "queued",
      dependencies: [],
    });
  });

  it("external() makes a gate step with no job type, queue settings or stage", () => {
    expect(WorkflowStepEnqueueBuilder.external(key("approve"), { note: "x" }).build()).toStrictEqual({
      stepKey: "approve",
      executionKind: "EXTERNAL",
      jobType: null,
      organizationId: null,
      payload: { note: "x" },
      priority: null,
      maxAttempts: null,
      timeoutSeconds: null,
      stage: null,
      dependencies: [],
    });
  });

  it("setters are fluent and clear* undoes them", () => {
    const builder = WorkflowStepEnqueueBuilder.job(key("s"), type("t"), null);
    expect(builder.organizationId("org").priority(-5).maxAttempts(4).timeoutSeconds(30).stage("scheduled")).toBe(
      builder,
    );
    expect(builder.build()).toMatchObject({
      organizationId: "org",
      priority: -5,
      maxAttempts: 4,
      timeoutSeconds: 30,
      stage: "scheduled",
    });
    builder.clearOrganizationId().clearPriority().clearMaxAttempts().clearTimeoutSeconds().clearStage();
    expect(builder.build()).toMatchObject({
      organizationId: null,
      priority: null,
      maxAttempts: null,
      timeoutSeconds: null,
      stage: null,
    });
  });

  it("dependency helpers append in call order; setDependencies replaces", () => {
    const builder = WorkflowStepEnqueueBuilder.job(key("d"), type("t"), null)
      .dependsOnSuccess(["a", "b"])
      .dependsOnTerminal(["c"])
      .dependency({ prerequisiteStepKey: "e", releaseMode: null });
    expect(builder.build().dependencies).toStrictEqual([
      { prerequisiteStepKey: "a", releaseMode: "ON_SUCCESS" },
      { prerequisiteStepKey: "b", releaseMode: "ON_SUCCESS" },
      { prerequisiteStepKey: "c", releaseMode: "ON_TERMINAL" },
      { prerequisiteStepKey: "e", releaseMode: null },
    ]);
    builder.setDependencies([{ prerequisiteStepKey: "z", releaseMode: "ON_SUCCESS" }]);
    expect(builder.build().dependencies).toStrictEqual([{ prerequisiteStepKey: "z", releaseMode: "ON_SUCCESS" }]);
  });

  it("job() and external() accept unchecked blanks and report them at build", () => {
    const blankKey = WorkflowStepEnqueueBuilder.job(StepKey.unchecked(" "), type("t"), null);
    expectCode(() => blankKey.build(), "workflow.invalid_dag_step_key_blank");
    const blankType = WorkflowStepEnqueueBuilder.job(key("s"), JobType.unchecked(""), null);
    expectCode(() => blankType.build(), "workflow.invalid_dag_job_type_blank");
    expectCode(
      () => WorkflowStepEnqueueBuilder.external(StepKey.unchecked(""), null).build(),
      "workflow.invalid_dag_step_key_blank",
    );
  });

  it("tryJob and tryExternal check blanks immediately", () => {
    expectCode(() => WorkflowStepEnqueueBuilder.tryJob(" ", "t", null), "workflow.invalid_dag_step_key_blank");
    const error = expectCode(
      () => WorkflowStepEnqueueBuilder.tryJob("s", "  ", null),
      "workflow.invalid_dag_job_type_blank",
    );
    expect(error.details).toEqual({ stepKey: "s" });
    expectCode(() => WorkflowStepEnqueueBuilder.tryExternal("", null), "workflow.invalid_dag_step_key_blank");
    expect(WorkflowStepEnqueueBuilder.tryJob("s", "t", 1).build().jobType).toBe("t");
    expect(WorkflowStepEnqueueBuilder.tryExternal("g", 1).build().executionKind).toBe("EXTERNAL");
  });

  it("build validates the single step: JOB settings", () => {
    const job = () => WorkflowStepEnqueueBuilder.job(key("s"), type("t"), null);
    expectCode(() => job().maxAttempts(0).build(), "workflow.invalid_dag_step_max_attempts_non_positive");
    expectCode(() => job().timeoutSeconds(-1).build(), "workflow.invalid_dag_step_timeout_seconds_non_positive");
    expectCode(() => job().maxAttempts(2.5).build(), "workflow.invalid_dag_step_max_attempts_out_of_range");
    expectCode(
      () =>
        job()
          .timeoutSeconds(2 ** 31)
          .build(),
      "workflow.invalid_dag_step_timeout_seconds_out_of_range",
    );
    expectCode(
      () =>
        job()
          .priority(2 ** 31)
          .build(),
      "workflow.invalid_dag_step_priority_out_of_range",
    );
  });

  it("build validates the single step: EXTERNAL settings", () => {
    const gate = () => WorkflowStepEnqueueBuilder.external(key("g"), null);
    expectCode(() => gate().priority(1).build(), "workflow.invalid_dag_external_step_queue_settings_not_allowed");
    expectCode(() => gate().maxAttempts(1).build(), "workflow.invalid_dag_external_step_queue_settings_not_allowed");
    expectCode(() => gate().timeoutSeconds(1).build(), "workflow.invalid_dag_external_step_queue_settings_not_allowed");
    expectCode(() => gate().stage("queued").build(), "workflow.invalid_dag_external_step_queue_settings_not_allowed");
    expect(gate().organizationId("org").build().organizationId).toBe("org");
  });

  it("build validates the single step: dependencies", () => {
    const job = () => WorkflowStepEnqueueBuilder.job(key("s"), type("t"), null);
    expectCode(() => job().dependsOnSuccess([" "]).build(), "workflow.invalid_dag_dependency_step_key_blank");
    expectCode(() => job().dependsOnTerminal(["s"]).build(), "workflow.invalid_dag_self_dependency");
    expectCode(
      () => job().dependsOnSuccess(["a"]).dependsOnTerminal(["a"]).build(),
      "workflow.invalid_dag_duplicate_dependency",
    );
    // Unknown prerequisites are a graph error, left to the run.
    expect(() => job().dependsOnSuccess(["ghost"]).build()).not.toThrow();
  });

  it("tryBuild returns a Result", () => {
    const good = WorkflowStepEnqueueBuilder.job(key("s"), type("t"), null).tryBuild();
    expect(good.ok).toBe(true);
    const bad = WorkflowStepEnqueueBuilder.job(key("s"), type("t"), null).maxAttempts(0).tryBuild();
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.code).toBe("workflow.invalid_dag_step_max_attempts_non_positive");
  });

  it("build returns independent copies", () => {
    const builder = WorkflowStepEnqueueBuilder.job(key("s"), type("t"), null).dependsOnSuccess(["a"]);
    const first = builder.build();
    first.dependencies.push({ prerequisiteStepKey: "x", releaseMode: null });
    first.dependencies[0]!.prerequisiteStepKey = "mutated";
    builder.priority(3);
    expect(builder.build().dependencies).toStrictEqual([{ prerequisiteStepKey: "a", releaseMode: "ON_SUCCESS" }]);
    expect(first.priority).toBeNull();
  });

  it("draft returns the unvalidated step", () => {
    expect(WorkflowStepEnqueueBuilder.job(key("s"), type("t"), null).maxAttempts(0).draft().maxAttempts).toBe(0);
  });
});
