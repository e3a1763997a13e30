import { uuidv7 } from "uuidv7";
import { type ErrorCode, RunledgerError } from "./errors.ts";
import { err, ok, type Result } from "./result.ts";

declare const brand: unique symbol;

/** A job type name. Built unchecked (validated later) or parsed (never blank). */
export type JobType = string & { readonly [brand]: "JobType" };
/** A workflow type name. Built unchecked (validated later) or parsed (never blank). */
export type WorkflowType = string & { readonly [brand]: "WorkflowType" };
/** A workflow step key, unique within its run. Built unchecked (validated later) or parsed (never blank). */
export type StepKey = string & { readonly [brand]: "StepKey" };

/** True when `value` is empty after trimming whitespace — the one "blank" rule for every key. */
export function isBlank(value: string): boolean {
  return value.trim().length === 0;
}

/** Constructors shared by every branded identifier. */
export interface IdentifierConstructors<B extends string> {
  /** Brands `value` as is, blanks included; whatever consumes it validates later. */
  unchecked(value: string): B;
  /** Brands `value`, throwing a `RunledgerError` when it is blank after trimming. */
  parse(value: string): B;
  /** Like `parse`, but returns the failure as a `Result`. */
  tryParse(value: string): Result<B>;
}

function identifier<B extends string>(blankCode: ErrorCode): IdentifierConstructors<B> {
  const tryParse = (value: string): Result<B> =>
    typeof value === "string" && !isBlank(value) ? ok(value as B) : err(new RunledgerError(blankCode));
  return Object.freeze({
    unchecked: (value: string) => value as B,
    parse: (value: string) => {
      const result = tryParse(value);
      if (!result.ok) throw result.error;
      return result.value;
    },
    tryParse,
  });
}

/** `JobType.parse` throws `identifier.job_type_blank` for blank input. */
export const JobType: IdentifierConstructors<JobType> = identifier<JobType>("identifier.job_type_blank");
/** `WorkflowType.parse` throws `identifier.workflow_type_blank` for blank input. */
export const WorkflowType: IdentifierConstructors<WorkflowType> = identifier<WorkflowType>(
  "identifier.workflow_type_blank",
);
/** `StepKey.parse` throws `identifier.step_key_blank` for blank input. */
export const StepKey: IdentifierConstructors<StepKey> = identifier<StepKey>("identifier.step_key_blank");

/** A fresh, roughly time-ordered UUIDv7 in canonical lower-case form, for every row id. */
export function newId(): string {
  return uuidv7();
}
