import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  exceedsUtf8,
  jsonDeeperThan,
  MAX_IDENTIFIER_BYTES,
  MAX_WORKFLOW_STEPS,
  utf8Length,
  validateWorkflowDag,
  validateWorkflowRunEnqueue,
} from "../../src/core/index.ts";
import { expectCode } from "./helpers.ts";
import { jobStep } from "./workflow-fixtures.ts";

/** Depth of a JSON value, by walking it. */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== "object") return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(depthOf));
}

describe("utf8Length", () => {
  it("matches the encoder on any string, lone surrogates included", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (text) => {
        expect(utf8Length(text)).toBe(Buffer.byteLength(text, "utf8"));
      }),
    );
    expect(utf8Length("\ud800")).toBe(3);
    expect(utf8Length("😀")).toBe(4);
  });

  it("exceedsUtf8 agrees with the exact length around the limit", () => {
    for (const text of ["a".repeat(512), "a".repeat(513), "é".repeat(256), "é".repeat(257), "😀".repeat(129)]) {
      expect(exceedsUtf8(text, MAX_IDENTIFIER_BYTES)).toBe(Buffer.byteLength(text) > MAX_IDENTIFIER_BYTES);
    }
  });
});

describe("jsonDeeperThan", () => {
  it("agrees with the depth of the parsed value, brackets inside strings ignored", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 8 }), (value, max) => {
        const text = JSON.stringify(value);
        // Below 2 * max characters the scan is skipped; the answer must still be right.
        expect(jsonDeeperThan(text, max)).toBe(depthOf(value) > max);
      }),
    );
    expect(jsonDeeperThan(JSON.stringify({ a: '[[[[[[[[[[\\"{{{{{{{{' }), 1)).toBe(false);
    expect(jsonDeeperThan("[".repeat(101) + "]".repeat(101), 100)).toBe(true);
    expect(jsonDeeperThan("[".repeat(100) + "]".repeat(100), 100)).toBe(false);
  });
});

describe("workflow limits", () => {
  const step = (stepKey: string) => jobStep(stepKey, [], { jobType: "t", payload: {} });

  it("refuses more than MAX_WORKFLOW_STEPS steps before looking at their edges", () => {
    const steps = Array.from({ length: MAX_WORKFLOW_STEPS + 1 }, (_, i) => step(`s${i}`));
    expectCode(() => validateWorkflowDag(steps), "workflow.invalid_dag_too_many_steps");
    expect(() => validateWorkflowDag(steps.slice(1))).not.toThrow();
  });

  it("refuses identifiers over MAX_IDENTIFIER_BYTES", () => {
    const long = "k".repeat(MAX_IDENTIFIER_BYTES + 1);
    const run = { workflowType: "w", organizationId: null, metadata: {}, idempotencyKey: null, steps: [step("a")] };
    expectCode(() => validateWorkflowRunEnqueue({ ...run, workflowType: long }), "identifier.too_long");
    expectCode(() => validateWorkflowRunEnqueue({ ...run, idempotencyKey: long }), "identifier.too_long");
    expectCode(() => validateWorkflowRunEnqueue({ ...run, steps: [step(long)] }), "identifier.too_long");
    expectCode(
      () => validateWorkflowRunEnqueue({ ...run, steps: [{ ...step("a"), jobType: long }] }),
      "identifier.too_long",
    );
  });
});
