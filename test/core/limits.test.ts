import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkLabel,
  exceedsUtf8,
  jsonDeeperThan,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_IDENTIFIER_BYTES,
  MAX_WORKFLOW_STEPS,
  truncateErrorMessage,
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

describe("truncateErrorMessage", () => {
  it("leaves a message that fits alone, byte for byte", () => {
    const fits = "é".repeat(MAX_ERROR_MESSAGE_BYTES / 2);
    expect(truncateErrorMessage(fits)).toBe(fits);
    expect(truncateErrorMessage("")).toBe("");
  });

  it("cuts a longer one to the limit, ending in a marker that counts the bytes left out", () => {
    const message = `start ${"x".repeat(20 * 1024 * 1024)}`;
    const cut = truncateErrorMessage(message);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
    expect(cut.startsWith("start xxx")).toBe(true);
    const [, dropped] = /… \[truncated (\d+) bytes\]$/.exec(cut) ?? [];
    const kept = Buffer.byteLength(cut) - Buffer.byteLength(`… [truncated ${dropped} bytes]`);
    expect(kept + Number(dropped)).toBe(Buffer.byteLength(message));
  });

  it("fits any string within any limit without splitting a surrogate pair", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 400 }), fc.integer({ min: 40, max: 300 }), (text, max) => {
        const cut = truncateErrorMessage(text, max);
        expect(utf8Length(cut)).toBeLessThanOrEqual(max);
        if (utf8Length(text) <= max) expect(cut).toBe(text);
        else {
          const [, dropped] = /… \[truncated (\d+) bytes\]$/.exec(cut) ?? [];
          const kept = cut.slice(0, cut.length - `… [truncated ${dropped} bytes]`.length);
          expect(text.startsWith(kept)).toBe(true);
          expect(utf8Length(kept) + Number(dropped)).toBe(utf8Length(text));
          // A pair is kept whole or not at all.
          const last = kept.charCodeAt(kept.length - 1);
          if (last >= 0xd800 && last <= 0xdbff) expect(text.charCodeAt(kept.length) & 0xfc00).not.toBe(0xdc00);
        }
      }),
    );
  });
});

describe("checkLabel", () => {
  it("refuses what is not storable text with the caller's code, and over-long text with identifier.too_long", () => {
    for (const bad of ["", " \t", "a\u0000b", "a\ud800b", 42, null, undefined]) {
      expectCode(() => checkLabel(bad, "stage", "job.invalid_progress"), "job.invalid_progress");
    }
    expectCode(
      () => checkLabel("s".repeat(MAX_IDENTIFIER_BYTES + 1), "stage", "job.invalid_progress"),
      "identifier.too_long",
    );
    expect(() => checkLabel("s".repeat(MAX_IDENTIFIER_BYTES), "stage", "job.invalid_progress")).not.toThrow();
    expect(() => checkLabel("😀", "stage", "job.invalid_progress")).not.toThrow();
  });
});
