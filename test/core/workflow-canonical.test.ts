import { describe, expect, it } from "vitest";
import {
  canonicalAppendRequest,
  canonicalWorkflowRunRequest,
  canonicalWorkflowStep,
  compareCodePoints,
} from "../../src/core/index.ts";
import { externalStep, jobStep, run } from "./workflow-fixtures.ts";

describe("canonicalWorkflowRunRequest", () => {
  it("has exactly the snapshot shape: snake_case keys, effective org and stage, normalized modes", () => {
    const request = run(
      [
        jobStep("b", [["a", null]], { priority: 5, maxAttempts: 2, timeoutSeconds: 60, organizationId: "org-step" }),
        externalStep("gate", [["b", "ON_SUCCESS"]]),
        jobStep("a", [], { stage: "scheduled" }),
      ],
      { organizationId: "org-run", metadata: { source: "api" }, workflowType: "ignored", idempotencyKey: "ignored" },
    );
    expect(canonicalWorkflowRunRequest(request)).toStrictEqual({
      metadata: { source: "api" },
      steps: [
        {
          step_key: "a",
          execution_kind: "JOB",
          job_type: "jobs.a",
          organization_id: "org-run",
          payload: { step: "a" },
          priority: null,
          max_attempts: null,
          timeout_seconds: null,
          stage: "scheduled",
          dependencies: [],
        },
        {
          step_key: "b",
          execution_kind: "JOB",
          job_type: "jobs.b",
          organization_id: "org-step",
          payload: { step: "b" },
          priority: 5,
          max_attempts: 2,
          timeout_seconds: 60,
          stage: "queued",
          dependencies: [{ prerequisite_step_key: "a", release_mode: "ON_TERMINAL" }],
        },
        {
          step_key: "gate",
          execution_kind: "EXTERNAL",
          job_type: null,
          organization_id: "org-run",
          payload: {},
          priority: null,
          max_attempts: null,
          timeout_seconds: null,
          stage: null,
          dependencies: [{ prerequisite_step_key: "b", release_mode: "ON_SUCCESS" }],
        },
      ],
    });
  });

  it("gives identical output whatever the order of steps and dependencies", () => {
    const one = run(
      [
        jobStep("x"),
        jobStep("y"),
        jobStep("z", [
          ["x", "ON_SUCCESS"],
          ["y", null],
          ["w", "ON_TERMINAL"],
        ]),
        jobStep("w"),
      ],
      { metadata: { m: 1 } },
    );
    const other = run(
      [
        jobStep("w"),
        jobStep("z", [
          ["w", "ON_TERMINAL"],
          ["y", "ON_TERMINAL"],
          ["x", "ON_SUCCESS"],
        ]),
        jobStep("y"),
        jobStep("x"),
      ],
      { metadata: { m: 1 } },
    );
    const a = canonicalWorkflowRunRequest(one);
    const b = canonicalWorkflowRunRequest(other);
    expect(a).toStrictEqual(b);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(a.steps.map((s) => s.step_key)).toEqual(["w", "x", "y", "z"]);
    expect(a.steps[3]!.dependencies.map((d) => d.prerequisite_step_key)).toEqual(["w", "x", "y"]);
  });

  it("treats an explicit default differently from an omitted value", () => {
    const omitted = canonicalWorkflowRunRequest(run([jobStep("a")]));
    const explicit = canonicalWorkflowRunRequest(run([jobStep("a", [], { maxAttempts: 3 })]));
    expect(omitted).not.toStrictEqual(explicit);
  });

  it("treats a requested queued stage like an omitted one (both are effective)", () => {
    expect(canonicalWorkflowRunRequest(run([jobStep("a", [], { stage: "queued" })]))).toStrictEqual(
      canonicalWorkflowRunRequest(run([jobStep("a")])),
    );
  });

  it("uses the step override, else the run organization, else null", () => {
    expect(canonicalWorkflowStep(jobStep("a"), null).organization_id).toBeNull();
    expect(canonicalWorkflowStep(jobStep("a"), "run").organization_id).toBe("run");
    expect(canonicalWorkflowStep(jobStep("a", [], { organizationId: "step" }), "run").organization_id).toBe("step");
  });

  it("does not mutate its input", () => {
    const request = run([jobStep("b", ["a"]), jobStep("a")]);
    const before = structuredClone(request);
    canonicalWorkflowRunRequest(request);
    expect(request).toStrictEqual(before);
  });

  it("sorts keys by code point, not by UTF-16 unit or locale", () => {
    const keys = ["é", "a", "😀", "B", "\uffff", "aa"];
    const snapshot = canonicalWorkflowRunRequest(run(keys.map((k) => jobStep(k))));
    expect(snapshot.steps.map((s) => s.step_key)).toEqual(["B", "a", "aa", "é", "\uffff", "😀"]);
    expect(compareCodePoints("\uffff", "😀")).toBe(-1);
    expect(compareCodePoints("😀", "\uffff")).toBe(1);
    expect(compareCodePoints("a", "a")).toBe(0);
    expect(compareCodePoints("a", "ab")).toBe(-1);
  });
});

describe("canonicalAppendRequest", () => {
  it("has the window key and the same step shape, sorted", () => {
    const request = canonicalAppendRequest(
      "gate",
      [jobStep("n2", ["n1", ["gate", "ON_SUCCESS"]]), externalStep("n1")],
      "org-run",
    );
    expect(request).toStrictEqual({
      append_window_step_key: "gate",
      steps: [
        canonicalWorkflowStep(externalStep("n1"), "org-run"),
        {
          step_key: "n2",
          execution_kind: "JOB",
          job_type: "jobs.n2",
          organization_id: "org-run",
          payload: { step: "n2" },
          priority: null,
          max_attempts: null,
          timeout_seconds: null,
          stage: "queued",
          dependencies: [
            { prerequisite_step_key: "gate", release_mode: "ON_SUCCESS" },
            { prerequisite_step_key: "n1", release_mode: "ON_TERMINAL" },
          ],
        },
      ],
    });
  });

  it("is order-insensitive", () => {
    const a = canonicalAppendRequest("g", [jobStep("p"), jobStep("q", ["p", "g"])], null);
    const b = canonicalAppendRequest("g", [jobStep("q", ["g", "p"]), jobStep("p")], null);
    expect(a).toStrictEqual(b);
  });
});
