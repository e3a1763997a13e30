import { describe, expect, it } from "vitest";
import {
  err,
  isBlank,
  JobType,
  newId,
  ok,
  RunledgerError,
  resultOf,
  StepKey,
  unwrap,
  WorkflowType,
} from "../../src/core/index.ts";
import { expectCode } from "./helpers.ts";

describe("branded identifiers", () => {
  const cases = [
    ["JobType", JobType, "identifier.job_type_blank"],
    ["WorkflowType", WorkflowType, "identifier.workflow_type_blank"],
    ["StepKey", StepKey, "identifier.step_key_blank"],
  ] as const;

  for (const [name, ctor, code] of cases) {
    describe(name, () => {
      it("unchecked accepts anything, blanks included, and keeps the value", () => {
        expect(ctor.unchecked("")).toBe("");
        expect(ctor.unchecked("  ")).toBe("  ");
        expect(ctor.unchecked(" a ")).toBe(" a ");
      });

      it("parse keeps non-blank values unchanged (no trimming)", () => {
        expect(ctor.parse("a.b")).toBe("a.b");
        expect(ctor.parse(" a ")).toBe(" a ");
      });

      it.each(["", " ", "\t\n", "\u00a0\u2003"])("parse rejects blank %j with %s", (value) => {
        expectCode(() => ctor.parse(value), code);
      });

      it("tryParse returns a Result instead of throwing", () => {
        expect(ctor.tryParse("x")).toEqual({ ok: true, value: "x" });
        const result = ctor.tryParse("   ");
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.error.code).toBe(code);
      });

      it("rejects non-strings from untyped callers", () => {
        expectCode(() => ctor.parse(undefined as unknown as string), code);
      });
    });
  }

  it("isBlank trims Unicode whitespace", () => {
    expect(isBlank("")).toBe(true);
    expect(isBlank(" \t\r\n\u00a0")).toBe(true);
    expect(isBlank("x")).toBe(false);
  });
});

describe("newId", () => {
  it("returns distinct, time-ordered UUIDv7 strings", () => {
    const ids = Array.from({ length: 200 }, () => newId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });
});

describe("Result helpers", () => {
  it("ok, err and unwrap", () => {
    expect(ok(1)).toEqual({ ok: true, value: 1 });
    expect(err("e")).toEqual({ ok: false, error: "e" });
    expect(unwrap(ok(2))).toBe(2);
    expect(() => unwrap(err(new Error("boom")))).toThrow("boom");
  });

  it("resultOf captures RunledgerError and rethrows anything else", () => {
    expect(resultOf(() => 3)).toEqual({ ok: true, value: 3 });
    const failed = resultOf(() => {
      throw new RunledgerError("job.not_found");
    });
    expect(failed.ok).toBe(false);
    if (!failed.ok) expect(failed.error.code).toBe("job.not_found");
    expect(() =>
      resultOf(() => {
        throw new TypeError("bug");
      }),
    ).toThrow(TypeError);
  });
});
