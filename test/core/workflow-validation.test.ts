import { describe, expect, it } from "vitest";
import {
  type ErrorCode,
  findCycle,
  MAX_TIMEOUT_SECONDS,
  MAX_WORKFLOW_STEPS,
  validateWorkflowDag,
  validateWorkflowRunEnqueue,
  validateWorkflowStep,
  validateWorkflowStepAppend,
  type WorkflowStepEnqueue,
} from "../../src/core/index.ts";
import { expectCode } from "./helpers.ts";
import { externalStep, jobStep, run } from "./workflow-fixtures.ts";

const INT32_MAX = 2_147_483_647;
const INT32_MIN = -2_147_483_648;

describe("validateWorkflowRunEnqueue: run-level checks and their order", () => {
  it("accepts a valid fan-out/fan-in run", () => {
    const steps = [
      jobStep("crawl"),
      jobStep("classify", [["crawl", "ON_SUCCESS"]]),
      jobStep("score", [["crawl", "ON_SUCCESS"]]),
      jobStep("persist", [
        ["classify", "ON_SUCCESS"],
        ["score", "ON_TERMINAL"],
      ]),
      externalStep("approve", ["persist"]),
    ];
    expect(() => validateWorkflowRunEnqueue(run(steps, { idempotencyKey: "k" }))).not.toThrow();
  });

  it("checks a blank idempotency key first, then a blank workflow type, then empty steps", () => {
    expectCode(
      () => validateWorkflowRunEnqueue(run([], { idempotencyKey: " ", workflowType: "" })),
      "workflow.invalid_dag_idempotency_key_blank",
    );
    expectCode(
      () => validateWorkflowRunEnqueue(run([], { workflowType: "  " })),
      "workflow.invalid_dag_workflow_type_blank",
    );
    expectCode(() => validateWorkflowRunEnqueue(run([])), "workflow.invalid_dag_empty");
  });

  it("accepts a null idempotency key but not an empty one", () => {
    expect(() => validateWorkflowRunEnqueue(run([jobStep("a")], { idempotencyKey: null }))).not.toThrow();
    expectCode(
      () => validateWorkflowRunEnqueue(run([jobStep("a")], { idempotencyKey: "" })),
      "workflow.invalid_dag_idempotency_key_blank",
    );
  });

  it("checks every step's shape and key before any dependency, and dependencies before cycles", () => {
    // Step 0 has a missing dependency, step 1 a cycle partner, step 2 a shape error: the shape error wins.
    const shapeLast = [jobStep("a", ["ghost"]), jobStep("b", ["a"]), jobStep("c", [], { jobType: " " })];
    expectCode(() => validateWorkflowDag(shapeLast), "workflow.invalid_dag_job_type_blank");
    // A duplicate key at index 1 is reported before a shape error at index 2.
    const duplicateFirst = [jobStep("a"), jobStep("a"), jobStep("c", [], { maxAttempts: 0 })];
    expectCode(() => validateWorkflowDag(duplicateFirst), "workflow.invalid_dag_duplicate_step_key");
    // A missing prerequisite is reported before a cycle elsewhere.
    const missingBeforeCycle = [jobStep("a", ["b"]), jobStep("b", ["a"]), jobStep("c", ["ghost"])];
    expectCode(() => validateWorkflowDag(missingBeforeCycle), "workflow.invalid_dag_missing_dependency");
  });
});

describe("step shape", () => {
  const shapeCases: [string, WorkflowStepEnqueue, ErrorCode][] = [
    ["blank key", jobStep(" "), "workflow.invalid_dag_step_key_blank"],
    ["empty key", jobStep(""), "workflow.invalid_dag_step_key_blank"],
    ["missing job type", jobStep("a", [], { jobType: null }), "workflow.invalid_dag_job_type_blank"],
    ["blank job type", jobStep("a", [], { jobType: "\t" }), "workflow.invalid_dag_job_type_blank"],
    ["zero attempts", jobStep("a", [], { maxAttempts: 0 }), "workflow.invalid_dag_step_max_attempts_non_positive"],
    ["negative attempts", jobStep("a", [], { maxAttempts: -3 }), "workflow.invalid_dag_step_max_attempts_non_positive"],
    [
      "fractional attempts",
      jobStep("a", [], { maxAttempts: 1.5 }),
      "workflow.invalid_dag_step_max_attempts_out_of_range",
    ],
    [
      "attempts above int32",
      jobStep("a", [], { maxAttempts: INT32_MAX + 1 }),
      "workflow.invalid_dag_step_max_attempts_out_of_range",
    ],
    [
      "NaN attempts",
      jobStep("a", [], { maxAttempts: Number.NaN }),
      "workflow.invalid_dag_step_max_attempts_out_of_range",
    ],
    ["zero timeout", jobStep("a", [], { timeoutSeconds: 0 }), "workflow.invalid_dag_step_timeout_seconds_non_positive"],
    [
      "negative timeout",
      jobStep("a", [], { timeoutSeconds: -1 }),
      "workflow.invalid_dag_step_timeout_seconds_non_positive",
    ],
    [
      "fractional timeout",
      jobStep("a", [], { timeoutSeconds: 0.5 }),
      "workflow.invalid_dag_step_timeout_seconds_out_of_range",
    ],
    [
      "infinite timeout",
      jobStep("a", [], { timeoutSeconds: Number.POSITIVE_INFINITY }),
      "workflow.invalid_dag_step_timeout_seconds_out_of_range",
    ],
    [
      "priority above int32",
      jobStep("a", [], { priority: INT32_MAX + 1 }),
      "workflow.invalid_dag_step_priority_out_of_range",
    ],
    [
      "priority below int32",
      jobStep("a", [], { priority: INT32_MIN - 1 }),
      "workflow.invalid_dag_step_priority_out_of_range",
    ],
    ["fractional priority", jobStep("a", [], { priority: 0.1 }), "workflow.invalid_dag_step_priority_out_of_range"],
    [
      "unknown stage",
      jobStep("a", [], { stage: "paused" as unknown as "queued" }),
      "workflow.invalid_dag_step_stage_invalid",
    ],
    [
      "external with a job type",
      externalStep("a", [], { jobType: "jobs.a" }),
      "workflow.invalid_dag_external_step_job_type_not_allowed",
    ],
    [
      "external with an empty job type",
      externalStep("a", [], { jobType: "" }),
      "workflow.invalid_dag_external_step_job_type_not_allowed",
    ],
    [
      "external with a priority",
      externalStep("a", [], { priority: 1 }),
      "workflow.invalid_dag_external_step_queue_settings_not_allowed",
    ],
    [
      "external with attempts",
      externalStep("a", [], { maxAttempts: 3 }),
      "workflow.invalid_dag_external_step_queue_settings_not_allowed",
    ],
    [
      "external with a timeout",
      externalStep("a", [], { timeoutSeconds: 30 }),
      "workflow.invalid_dag_external_step_queue_settings_not_allowed",
    ],
    [
      "external with a stage",
      externalStep("a", [], { stage: "queued" }),
      "workflow.invalid_dag_external_step_queue_settings_not_allowed",
    ],
    [
      "unknown execution kind",
      jobStep("a", [], { executionKind: "LAMBDA" as unknown as "JOB" }),
      "workflow.invalid_dag_step_execution_kind_invalid",
    ],
  ];

  it.each(shapeCases)("%s", (_, step, code) => {
    expectCode(() => validateWorkflowStep(step), code);
    const error = expectCode(() => validateWorkflowDag([jobStep("first"), step]), code);
    expect(error.details.stepIndex).toBe(1);
    if (code !== "workflow.invalid_dag_step_key_blank") expect(error.details.stepKey).toBe("a");
  });

  it("accepts the int32 bounds, the longest timeout a timer holds and every stage", () => {
    expect(() =>
      validateWorkflowStep(
        jobStep("a", [], { priority: INT32_MIN, maxAttempts: INT32_MAX, timeoutSeconds: MAX_TIMEOUT_SECONDS }),
      ),
    ).not.toThrow();
    expect(() => validateWorkflowStep(jobStep("a", [], { timeoutSeconds: MAX_TIMEOUT_SECONDS + 1 }))).toThrow(
      expect.objectContaining({ code: "workflow.invalid_dag_step_timeout_seconds_out_of_range" }),
    );
    expect(() => validateWorkflowStep(jobStep("a", [], { priority: INT32_MAX }))).not.toThrow();
    for (const stage of ["queued", "scheduled", "running", "completed"] as const) {
      expect(() => validateWorkflowStep(jobStep("a", [], { stage }))).not.toThrow();
    }
  });

  it("lets an EXTERNAL step have an organization override and dependencies", () => {
    expect(() =>
      validateWorkflowDag([jobStep("a"), externalStep("gate", ["a"], { organizationId: "org-1" })]),
    ).not.toThrow();
  });

  it("reports a duplicate step key with both indexes", () => {
    const error = expectCode(
      () => validateWorkflowDag([jobStep("a"), jobStep("b"), externalStep("a")]),
      "workflow.invalid_dag_duplicate_step_key",
    );
    expect(error.details).toEqual({ stepKey: "a", stepIndex: 2, firstStepIndex: 0 });
  });

  it("a blank key carries only the index", () => {
    const error = expectCode(
      () => validateWorkflowDag([jobStep("a"), jobStep("")]),
      "workflow.invalid_dag_step_key_blank",
    );
    expect(error.details).toEqual({ stepIndex: 1 });
    expect(expectCode(() => validateWorkflowStep(jobStep("")), "workflow.invalid_dag_step_key_blank").details).toEqual(
      {},
    );
  });
});

describe("dependency checks", () => {
  it.each([
    ["blank prerequisite", [jobStep("a"), jobStep("b", [" "])], "workflow.invalid_dag_dependency_step_key_blank", " "],
    [
      "unknown release mode",
      [jobStep("a"), jobStep("b", [["a", "ON_FAILURE" as unknown as "ON_SUCCESS"]])],
      "workflow.invalid_dag_dependency_release_mode_invalid",
      "a",
    ],
    ["self dependency", [jobStep("a"), jobStep("b", ["b"])], "workflow.invalid_dag_self_dependency", "b"],
    [
      "duplicate prerequisite (even with another mode)",
      [
        jobStep("a"),
        jobStep("b", [
          ["a", "ON_SUCCESS"],
          ["a", "ON_TERMINAL"],
        ]),
      ],
      "workflow.invalid_dag_duplicate_dependency",
      "a",
    ],
    [
      "missing prerequisite",
      [jobStep("a"), jobStep("b", ["ghost"])],
      "workflow.invalid_dag_missing_dependency",
      "ghost",
    ],
  ] as const)("%s", (_, steps, code, prerequisiteStepKey) => {
    const error = expectCode(() => validateWorkflowDag([...steps]), code);
    expect(error.details).toEqual({ stepKey: "b", stepIndex: 1, prerequisiteStepKey });
  });

  it("checks dependencies one at a time, in declaration order", () => {
    const first = (deps: string[]) => () => validateWorkflowDag([jobStep("a"), jobStep("b", deps)]);
    expectCode(first(["ghost", "b", ""]), "workflow.invalid_dag_missing_dependency");
    expectCode(first(["", "ghost"]), "workflow.invalid_dag_dependency_step_key_blank");
    expectCode(first(["b", "ghost"]), "workflow.invalid_dag_self_dependency");
    expectCode(first(["a", "a", "ghost"]), "workflow.invalid_dag_duplicate_dependency");
  });

  it("allows prerequisites declared later in the list", () => {
    expect(() => validateWorkflowDag([jobStep("b", ["a"]), jobStep("a")])).not.toThrow();
  });

  it("validateWorkflowStep does not know other steps, so it skips the missing check", () => {
    expect(() => validateWorkflowStep(jobStep("b", ["ghost"]))).not.toThrow();
    expectCode(() => validateWorkflowStep(jobStep("b", ["b"])), "workflow.invalid_dag_self_dependency");
  });
});

describe("cycle detection", () => {
  it("reports a two-step cycle in execution order, closed by its first key", () => {
    const error = expectCode(
      () => validateWorkflowDag([jobStep("a", ["b"]), jobStep("b", ["a"])]),
      "workflow.invalid_dag_cycle",
    );
    expect(error.details).toEqual({ cycle: ["a", "b", "a"] });
  });

  it("lists each key as a prerequisite of the next, starting at the earliest declared step", () => {
    // c depends on b, b on a, a on c: execution order a → b → c → a.
    const steps = [jobStep("x"), jobStep("c", ["b"]), jobStep("a", ["c", "x"]), jobStep("b", ["a"])];
    const error = expectCode(() => validateWorkflowDag(steps), "workflow.invalid_dag_cycle");
    expect(error.details.cycle).toEqual(["c", "a", "b", "c"]);
  });

  it("finds a cycle that does not include the first blocked step", () => {
    // d is blocked only because it depends on the b ⇄ c cycle.
    const steps = [jobStep("d", ["c"]), jobStep("b", ["c"]), jobStep("c", ["b"]), jobStep("root")];
    expect(findCycle(steps)).toEqual(["b", "c", "b"]);
  });

  it("returns null for acyclic graphs and ignores prerequisites outside the list", () => {
    expect(findCycle([jobStep("a", ["outside"]), jobStep("b", ["a"])])).toBeNull();
    expect(findCycle([])).toBeNull();
  });

  it("finds cycles in 10,000-step chains, wide fans and long rings quickly and without recursion", () => {
    const n = 10_000;
    const chain = Array.from({ length: n }, (_, i) => jobStep(`s${i}`, i === 0 ? [] : [`s${i - 1}`]));
    const started = performance.now();
    expect(findCycle(chain)).toBeNull();

    const fan = [jobStep("root"), ...Array.from({ length: n }, (_, i) => jobStep(`leaf${i}`, ["root"]))];
    fan.push(
      jobStep(
        "sink",
        fan.slice(1).map((s) => s.stepKey),
      ),
    );
    expect(findCycle(fan)).toBeNull();

    const ring = Array.from({ length: n }, (_, i) => jobStep(`r${i}`, [`r${(i + n - 1) % n}`]));
    const cycle = findCycle(ring)!;
    expect(cycle).toHaveLength(n + 1);
    expect(cycle[0]).toBe("r0");
    expect(cycle.at(-1)).toBe("r0");
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("validates a DAG of MAX_WORKFLOW_STEPS and refuses one step more before any edge check", () => {
    const chain = Array.from({ length: MAX_WORKFLOW_STEPS + 1 }, (_, i) =>
      jobStep(`s${i}`, [`s${(i + MAX_WORKFLOW_STEPS) % (MAX_WORKFLOW_STEPS + 1)}`]),
    );
    expectCode(() => validateWorkflowDag(chain), "workflow.invalid_dag_too_many_steps");
    const ring = chain.slice(0, MAX_WORKFLOW_STEPS).map((s, i) => (i === 0 ? jobStep("s0") : s));
    expect(() => validateWorkflowDag(ring)).not.toThrow();
  });
});

describe("validateWorkflowStepAppend", () => {
  const existing = new Set(["gate", "crawl"]);

  it("accepts new steps depending on existing and new steps", () => {
    expect(() =>
      validateWorkflowStepAppend(existing, [jobStep("b", ["a", "gate"]), jobStep("a", [["crawl", "ON_SUCCESS"]])]),
    ).not.toThrow();
  });

  it("rejects an empty batch", () => {
    expectCode(() => validateWorkflowStepAppend(existing, []), "workflow.invalid_dag_empty");
  });

  it("rejects a key that already exists in the run", () => {
    const error = expectCode(
      () => validateWorkflowStepAppend(existing, [jobStep("new"), jobStep("gate")]),
      "workflow.invalid_dag_duplicate_step_key",
    );
    expect(error.details).toEqual({ stepKey: "gate", stepIndex: 1, existing: true });
  });

  it("rejects a key repeated within the batch", () => {
    const error = expectCode(
      () => validateWorkflowStepAppend(existing, [jobStep("n"), jobStep("n")]),
      "workflow.invalid_dag_duplicate_step_key",
    );
    expect(error.details).toEqual({ stepKey: "n", stepIndex: 1, firstStepIndex: 0 });
  });

  it("rejects prerequisites that are neither existing nor new", () => {
    expectCode(
      () => validateWorkflowStepAppend(existing, [jobStep("n", ["ghost"])]),
      "workflow.invalid_dag_missing_dependency",
    );
  });

  it("checks the shape of each new step", () => {
    expectCode(() => validateWorkflowStepAppend(existing, [jobStep(" ")]), "workflow.invalid_dag_step_key_blank");
    expectCode(
      () => validateWorkflowStepAppend(existing, [externalStep("g", [], { priority: 1 })]),
      "workflow.invalid_dag_external_step_queue_settings_not_allowed",
    );
    expectCode(
      () => validateWorkflowStepAppend(existing, [jobStep("n", ["n"])]),
      "workflow.invalid_dag_self_dependency",
    );
  });

  it("rejects a cycle among the new steps", () => {
    const error = expectCode(
      () => validateWorkflowStepAppend(existing, [jobStep("x", ["y", "gate"]), jobStep("y", ["x"])]),
      "workflow.invalid_dag_cycle",
    );
    expect(error.details.cycle).toEqual(["x", "y", "x"]);
  });
});
