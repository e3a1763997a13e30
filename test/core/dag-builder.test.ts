import { describe, expect, it, vi } from "vitest";
import { RunledgerError, WorkflowDagBuilder } from "../../src/core/index.ts";
import { expectCode } from "./helpers.ts";

const dag = () => WorkflowDagBuilder.new("wf", {});

describe("WorkflowDagBuilder: the README recipe", () => {
  it("builds the fan-out/fan-in example", () => {
    const metadata = { source: "api" };
    const payload = { profile_id: "p_123" };
    const run = WorkflowDagBuilder.new("profiles.research", metadata)
      .idempotencyKey("profile:p_123:research")
      .job("crawl", "profiles.crawl", payload)
      .job("classify", "profiles.classify", payload)
      .afterSuccess("classify", ["crawl"])
      .job("score", "profiles.score", payload)
      .afterSuccess("score", ["crawl"])
      .job("persist", "profiles.persist", payload)
      .afterSuccess("persist", ["classify", "score"])
      .build();
    expect(run.workflowType).toBe("profiles.research");
    expect(run.idempotencyKey).toBe("profile:p_123:research");
    expect(run.organizationId).toBeNull();
    expect(run.metadata).toBe(metadata);
    expect(run.steps).toStrictEqual(
      [
        ["crawl", "profiles.crawl", []],
        ["classify", "profiles.classify", ["crawl"]],
        ["score", "profiles.score", ["crawl"]],
        ["persist", "profiles.persist", ["classify", "score"]],
      ].map(([stepKey, jobType, prerequisites]) => ({
        stepKey,
        executionKind: "JOB",
        jobType,
        organizationId: null,
        payload,
        priority: null,
        maxAttempts: null,
        timeoutSeconds: null,
        stage: "queued",
        dependencies: (prerequisites as string[]).map((p) => ({ prerequisiteStepKey: p, releaseMode: "ON_SUCCESS" })),
      })),
    );
  });

  it("afterTerminal adds ON_TERMINAL edges; organizationId applies to the run", () => {
    const run = dag()
      .organizationId("org-1")
      .job("a", "t.a", 1)
      .job("cleanup", "t.cleanup", 2)
      .afterTerminal("cleanup", ["a"])
      .build();
    expect(run.organizationId).toBe("org-1");
    expect(run.steps[1]!.dependencies).toStrictEqual([{ prerequisiteStepKey: "a", releaseMode: "ON_TERMINAL" }]);
    expect(dag().organizationId("o").clearOrganizationId().job("a", "t", 1).build().organizationId).toBeNull();
  });

  it("is fluent: every call returns the same builder", () => {
    const builder = dag();
    expect(builder.idempotencyKey("k")).toBe(builder);
    expect(builder.clearIdempotencyKey()).toBe(builder);
    expect(builder.organizationId("o")).toBe(builder);
    expect(builder.clearOrganizationId()).toBe(builder);
    expect(builder.job("a", "t", null)).toBe(builder);
    expect(builder.job("b", "t", null)).toBe(builder);
    expect(builder.afterSuccess("b", ["a"])).toBe(builder);
    expect(builder.afterTerminal("b", [])).toBe(builder);
  });
});

describe("WorkflowDagBuilder: validation timing (seed README table)", () => {
  describe("new(type, metadata)", () => {
    it("never fails immediately, even with a blank workflow type", () => {
      expect(() => WorkflowDagBuilder.new("", {})).not.toThrow();
      expect(() => WorkflowDagBuilder.new("   ", {}).job("a", "t", null)).not.toThrow();
    });

    it("defers a blank workflow type to build()", () => {
      const builder = WorkflowDagBuilder.new(" ", {}).job("a", "t", null);
      expectCode(() => builder.build(), "workflow.invalid_dag_workflow_type_blank");
      const result = builder.tryBuild();
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.code).toBe("workflow.invalid_dag_workflow_type_blank");
    });
  });

  describe("tryNew(type, metadata)", () => {
    it("fails immediately on a blank workflow type", () => {
      expectCode(() => WorkflowDagBuilder.tryNew("", {}), "workflow.invalid_dag_workflow_type_blank");
      expectCode(() => WorkflowDagBuilder.tryNew(" \t", {}), "workflow.invalid_dag_workflow_type_blank");
    });

    it("defers an empty step list and graph errors to build()", () => {
      const empty = WorkflowDagBuilder.tryNew("wf", {});
      expectCode(() => empty.build(), "workflow.invalid_dag_empty");
      const cyclic = WorkflowDagBuilder.tryNew("wf", {})
        .job("a", "t", null)
        .job("b", "t", null)
        .afterSuccess("a", ["b"])
        .afterSuccess("b", ["a"]);
      expectCode(() => cyclic.build(), "workflow.invalid_dag_cycle");
    });
  });

  describe(".job(step, jobType, payload)", () => {
    it("fails immediately on a blank step key", () => {
      expectCode(() => dag().job("", "t", null), "workflow.invalid_dag_step_key_blank");
      expectCode(() => dag().job("  ", "t", null), "workflow.invalid_dag_step_key_blank");
    });

    it("fails immediately on a blank job type", () => {
      const error = expectCode(() => dag().job("a", " ", null), "workflow.invalid_dag_job_type_blank");
      expect(error.details).toEqual({ stepKey: "a" });
    });

    it("fails immediately on a duplicate step key", () => {
      const builder = dag().job("a", "t", null);
      const error = expectCode(() => builder.job("a", "other", null), "workflow.invalid_dag_duplicate_step_key");
      expect(error.details).toEqual({ stepKey: "a" });
    });

    it("does not check job type registration without a checkJobType hook", () => {
      expect(() => dag().job("a", "no.such.type", null).build()).not.toThrow();
    });

    it("calls checkJobType so a catalog can reject unknown types at the call", () => {
      const known = new Set(["known"]);
      const checkJobType = vi.fn((jobType: string) => {
        if (!known.has(jobType)) {
          throw new RunledgerError("workflow.invalid_dag_unknown_job_type", { details: { jobType } });
        }
      });
      const builder = WorkflowDagBuilder.new("wf", {}, { checkJobType }).job("a", "known", null);
      expect(checkJobType).toHaveBeenCalledWith("known");
      expectCode(() => builder.job("b", "unknown", null), "workflow.invalid_dag_unknown_job_type");
      expect(builder.build().steps.map((s) => s.stepKey)).toEqual(["a"]);
      // Blank and duplicate checks come first and do not reach the hook.
      checkJobType.mockClear();
      expectCode(() => builder.job("c", " ", null), "workflow.invalid_dag_job_type_blank");
      expectCode(() => builder.job("a", "known", null), "workflow.invalid_dag_duplicate_step_key");
      expect(checkJobType).not.toHaveBeenCalled();
      expect(() => WorkflowDagBuilder.tryNew("wf", {}, { checkJobType }).job("x", "unknown", null)).toThrow(
        RunledgerError,
      );
    });
  });

  for (const method of ["afterSuccess", "afterTerminal"] as const) {
    describe(`.${method}(step, prerequisites)`, () => {
      const withA = () => dag().job("a", "t", null);

      it("fails immediately on a blank target step key", () => {
        expectCode(() => withA()[method](" ", ["a"]), "workflow.invalid_dag_step_key_blank");
      });

      it("fails immediately on a blank prerequisite step key", () => {
        const error = expectCode(
          () => withA()[method]("a", ["x", ""]),
          "workflow.invalid_dag_dependency_step_key_blank",
        );
        expect(error.details).toEqual({ stepKey: "a", prerequisiteStepKey: "" });
      });

      it("fails immediately on an unknown target step", () => {
        const error = expectCode(() => withA()[method]("later", ["a"]), "workflow.invalid_dag_unknown_target_step");
        expect(error.details).toEqual({ stepKey: "later" });
      });

      it("defers a missing prerequisite to build()", () => {
        const builder = withA();
        expect(() => builder[method]("a", ["ghost"])).not.toThrow();
        const error = expectCode(() => builder.build(), "workflow.invalid_dag_missing_dependency");
        expect(error.details).toEqual({ stepKey: "a", stepIndex: 0, prerequisiteStepKey: "ghost" });
      });

      it("accepts prerequisites added later in the chain", () => {
        const built = withA()[method]("a", ["b"]).job("b", "t", null).build();
        expect(built.steps[0]!.dependencies.map((d) => d.prerequisiteStepKey)).toEqual(["b"]);
      });

      it("defers a self-dependency to build()", () => {
        const builder = withA();
        expect(() => builder[method]("a", ["a"])).not.toThrow();
        expectCode(() => builder.build(), "workflow.invalid_dag_self_dependency");
      });

      it("defers a duplicate dependency to build()", () => {
        const builder = withA().job("b", "t", null);
        expect(() => builder[method]("b", ["a"])[method]("b", ["a"])).not.toThrow();
        expectCode(() => builder.build(), "workflow.invalid_dag_duplicate_dependency");
        const mixed = withA().job("b", "t", null).afterSuccess("b", ["a"]).afterTerminal("b", ["a"]);
        expectCode(() => mixed.build(), "workflow.invalid_dag_duplicate_dependency");
      });

      it("defers a cycle to build() and reports its path", () => {
        const builder = withA().job("b", "t", null).job("c", "t", null);
        expect(() => builder[method]("b", ["a"])[method]("c", ["b"])[method]("a", ["c"])).not.toThrow();
        const error = expectCode(() => builder.build(), "workflow.invalid_dag_cycle");
        expect(error.details).toEqual({ cycle: ["a", "b", "c", "a"] });
      });
    });
  }

  describe(".idempotencyKey(key)", () => {
    it("never fails immediately", () => {
      expect(() => dag().idempotencyKey("")).not.toThrow();
      expect(() => dag().idempotencyKey("   ")).not.toThrow();
    });

    it("defers a blank key to build()", () => {
      const builder = dag().job("a", "t", null).idempotencyKey(" ");
      expectCode(() => builder.build(), "workflow.invalid_dag_idempotency_key_blank");
      expect(builder.clearIdempotencyKey().build().idempotencyKey).toBeNull();
    });
  });

  it("reports the deferred errors in the validator's order", () => {
    const builder = WorkflowDagBuilder.new(" ", {}).idempotencyKey(" ");
    expectCode(() => builder.build(), "workflow.invalid_dag_idempotency_key_blank");
    builder.clearIdempotencyKey();
    expectCode(() => builder.build(), "workflow.invalid_dag_workflow_type_blank");
    expectCode(() => dag().build(), "workflow.invalid_dag_empty");
  });
});

describe("WorkflowDagBuilder: failed calls and results", () => {
  it("a call that throws leaves the builder unchanged", () => {
    const builder = dag().job("a", "t", null).job("b", "t", null);
    expect(() => builder.afterSuccess("b", ["a", " "])).toThrow(RunledgerError);
    expect(() => builder.afterSuccess("missing", ["a"])).toThrow(RunledgerError);
    expect(() => builder.job("a", "t", null)).toThrow(RunledgerError);
    const built = builder.build();
    expect(built.steps.map((s) => [s.stepKey, s.dependencies.length])).toEqual([
      ["a", 0],
      ["b", 0],
    ]);
  });

  it("tryBuild returns { ok, value } or { ok, error } and matches build()", () => {
    const good = dag().job("a", "t", null);
    expect(good.tryBuild()).toStrictEqual({ ok: true, value: good.build() });
    const bad = dag().job("a", "t", null).afterSuccess("a", ["a"]).tryBuild();
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.error).toBeInstanceOf(RunledgerError);
      expect(bad.error.code).toBe("workflow.invalid_dag_self_dependency");
    }
  });

  it("build can be called repeatedly and returns independent values", () => {
    const builder = dag().job("a", "t", null).job("b", "t", null).afterSuccess("b", ["a"]);
    const first = builder.build();
    first.steps[1]!.dependencies.length = 0;
    first.steps.pop();
    const second = builder.build();
    expect(second.steps).toHaveLength(2);
    expect(second.steps[1]!.dependencies).toHaveLength(1);
  });
});
