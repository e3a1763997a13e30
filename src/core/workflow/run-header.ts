import { RunledgerError } from "../errors.ts";
import { isBlank } from "../ids.ts";
import type { WorkflowRunEnqueue } from "./types.ts";

/** The run-level fields of a `WorkflowRunEnqueue`. */
export type WorkflowRunHeader = Omit<WorkflowRunEnqueue, "steps">;

/** `tryNew`'s check: throws `workflow.invalid_dag_workflow_type_blank` for a blank workflow type. */
export function requireWorkflowType(workflowType: unknown): void {
  if (typeof workflowType !== "string" || isBlank(workflowType)) {
    throw new RunledgerError("workflow.invalid_dag_workflow_type_blank");
  }
}

/**
 * What both run builders share: the workflow type and metadata they were made with, and the
 * run's organization and idempotency key. Nothing here validates; `build()` does.
 */
export abstract class WorkflowRunHeaderBuilder {
  readonly #workflowType: string;
  readonly #metadata: unknown;
  #organizationId: string | null = null;
  #idempotencyKey: string | null = null;

  protected constructor(workflowType: string, metadata: unknown) {
    this.#workflowType = workflowType;
    this.#metadata = metadata;
  }

  /** The run's organization; steps without their own override inherit it. */
  organizationId(organizationId: string): this {
    this.#organizationId = organizationId;
    return this;
  }

  clearOrganizationId(): this {
    this.#organizationId = null;
    return this;
  }

  /** Makes enqueue idempotent within (workflow type, organization); a blank key fails at `build()`. */
  idempotencyKey(idempotencyKey: string): this {
    this.#idempotencyKey = idempotencyKey;
    return this;
  }

  clearIdempotencyKey(): this {
    this.#idempotencyKey = null;
    return this;
  }

  protected header(): WorkflowRunHeader {
    return {
      workflowType: this.#workflowType,
      organizationId: this.#organizationId,
      metadata: this.#metadata,
      idempotencyKey: this.#idempotencyKey,
    };
  }
}
