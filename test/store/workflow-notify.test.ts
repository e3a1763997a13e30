import { describe, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../../src/core/index.ts";
import {
  cancelWorkflowRun,
  completeExternalWorkflowStep,
  enqueueWorkflowRun,
  WORKFLOWS_CHANNEL,
} from "../../src/store/index.ts";
import { externalStep } from "../core/workflow-fixtures.ts";
import { useTestDatabase } from "../support/db.ts";
import { waitFor } from "../support/wait.ts";

const { db } = await useTestDatabase();

const gatedRun = () =>
  enqueueWorkflowRun(db, {
    workflowType: "notify.flow",
    organizationId: null,
    metadata: {},
    idempotencyKey: null,
    steps: [externalStep("gate"), externalStep("other")],
  });

describe("runledger_workflows notifications", () => {
  it("announce a completed gate and a canceled run with the run's id", async () => {
    const heard: string[] = [];
    const subscription = await db.$runledger.listen(WORKFLOWS_CHANNEL, (payload) => heard.push(payload));
    try {
      const approved = await gatedRun();
      await completeExternalWorkflowStep(db, {
        scope: ALL_ORGANIZATIONS,
        workflowRunId: approved.id,
        stepKey: "gate",
        terminalStatus: "SUCCEEDED",
      });
      await waitFor(() => heard.includes(approved.id), { what: "the gate's notification" });

      const canceled = await gatedRun();
      await cancelWorkflowRun(db, { scope: ALL_ORGANIZATIONS, workflowRunId: canceled.id });
      await waitFor(() => heard.includes(canceled.id), { what: "the cancel's notification" });
    } finally {
      await subscription.unlisten();
    }
  });
});
