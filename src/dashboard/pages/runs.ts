import { WORKFLOW_RUN_STATUSES, type WorkflowRunStatus } from "../../core/index.ts";
import { dagLegend, renderDag } from "../dag.ts";
import { badge, json, shortId, when } from "../format.ts";
import { html } from "../html.ts";
import {
  actionButton,
  decodeCursor,
  encodeCursor,
  href,
  nextPageLink,
  oneOf,
  orgCell,
  orgHeader,
  type PageContext,
  PageError,
  type PageResult,
  type PageRoute,
  param,
  redacted,
} from "../page.ts";

async function list(ctx: PageContext): Promise<PageResult> {
  const status = oneOf<WorkflowRunStatus>(ctx, "status", WORKFLOW_RUN_STATUSES);
  const type = param(ctx, "type");
  const after = decodeCursor(ctx);
  const page = await ctx.store.runs({
    status,
    workflowTypeContains: type,
    limit: ctx.options.pageSize,
    after: after === undefined ? undefined : { createdAt: after.at, id: after.id },
  });
  const controls = html`<form class="filters" method="get" action="${ctx.base}/runs">
    <label>Status <select name="status">
      <option value="">any</option>
      ${WORKFLOW_RUN_STATUSES.map((s) => html`<option value="${s}"${s === status ? " selected" : ""}>${s}</option>`)}
    </select></label>
    <label>Workflow type contains <input name="type" value="${type ?? ""}"></label>
    <button class="btn" type="submit">Filter</button>
  </form>`;
  const rows = page.items.map(
    (r) => html`<tr data-run="${r.id}" data-status="${r.status}">
      <td><a href="${href(ctx, `/runs/${r.id}`)}">${shortId(r.id)}</a></td>
      <td>${r.workflowType}</td><td>${badge(r.status)}</td>
      <td>${when(r.startedAt, ctx.now)}</td><td>${when(r.finishedAt, ctx.now)}</td>
      ${orgCell(ctx, r.organizationId)}
    </tr>`,
  );
  const next = page.next === null ? null : encodeCursor(page.next.createdAt, page.next.id);
  return {
    title: "Workflow runs",
    controls,
    body:
      page.items.length === 0
        ? html`<p class="muted">No workflow runs match.</p>`
        : html`<table data-table="runs"><thead><tr><th>Run</th><th>Workflow type</th><th>Status</th><th>Started</th>
            <th>Finished</th>${orgHeader(ctx)}</tr></thead><tbody>${rows}</tbody></table>${nextPageLink(ctx, next)}`,
  };
}

async function detail(ctx: PageContext): Promise<PageResult> {
  const runId = ctx.params[0]!;
  const run = await ctx.store.run(runId);
  if (run === null) throw new PageError(404, "Workflow run not found.");
  const [steps, edges] = await Promise.all([ctx.store.runSteps(runId), ctx.store.runEdges(runId)]);
  const live = run.status === "RUNNING" || run.status === "WAITING_FOR_EXTERNAL";
  const gateActions = (stepKey: string) => html`<span class="actions">
    ${actionButton(ctx, { action: "gate.approve", path: `/runs/${run.id}/gates/${encodeURIComponent(stepKey)}/approve`, label: "Approve" })}
    ${actionButton(ctx, { action: "gate.reject", path: `/runs/${run.id}/gates/${encodeURIComponent(stepKey)}/reject`, label: "Reject", confirm: `Reject ${stepKey}? Steps that need it to succeed are canceled.`, danger: true })}
  </span>`;
  const stepRows = steps.map(
    (s) => html`<tr data-step="${s.stepKey}" data-status="${s.status}">
      <td><code>${s.stepKey}</code></td>
      <td>${s.executionKind === "EXTERNAL" ? html`<span class="muted">external gate</span>` : s.jobType}</td>
      <td>${badge(s.status)}</td>
      <td>${s.jobId === null ? "" : html`<a href="${href(ctx, `/jobs/${s.jobId}`)}">${shortId(s.jobId)}</a>`}</td>
      <td>${when(s.startedAt ?? s.releasedAt, ctx.now)}</td><td>${when(s.finishedAt, ctx.now)}</td>
      <td>${s.statusReason ?? ""}${s.lastErrorCode === null ? "" : html` <code>${s.lastErrorCode}</code>`}</td>
      <td>${s.executionKind === "EXTERNAL" && s.status === "WAITING_FOR_EXTERNAL" ? gateActions(s.stepKey) : ""}</td>
    </tr>`,
  );
  return {
    title: `Run ${run.workflowType}`,
    body: html`<section class="panel">
        <div class="actions">${live ? actionButton(ctx, { action: "run.cancel", path: `/runs/${run.id}/cancel`, label: "Cancel run", confirm: "Cancel this run and every unfinished step?", danger: true }) : ""}${
          run.status === "COMPLETED_WITH_ERRORS"
            ? actionButton(ctx, {
                action: "run.retry",
                path: `/runs/${run.id}/retry`,
                label: "Retry failed steps",
                confirm: "Run this run's failed steps again?",
              })
            : ""
        }</div>
        <dl class="fields">
          <dt>Id</dt><dd><code>${run.id}</code></dd>
          <dt>Status</dt><dd data-field="status">${badge(run.status)}</dd>
          <dt>Organization</dt><dd>${run.organizationId === null ? html`<span class="muted">none</span>` : html`<code>${run.organizationId}</code>`}</dd>
          <dt>Idempotency key</dt><dd>${run.idempotencyKey === null ? html`<span class="muted">none</span>` : html`<code>${run.idempotencyKey}</code>`}</dd>
          <dt>Started</dt><dd>${when(run.startedAt, ctx.now)}</dd>
          <dt>Finished</dt><dd>${when(run.finishedAt, ctx.now)}</dd>
        </dl>
      </section>
      <h2>Graph</h2>
      <div class="dag-wrap">${renderDag(run.id, steps, edges, (jobId) => href(ctx, `/jobs/${jobId}`))}</div>
      ${dagLegend()}
      <h2>Steps</h2>
      <table data-table="steps"><thead><tr><th>Step</th><th>Job type</th><th>Status</th><th>Job</th><th>Started</th>
        <th>Finished</th><th>Reason</th><th></th></tr></thead><tbody>${stepRows}</tbody></table>
      <h2>Metadata</h2>${json(redacted(ctx, run.metadata, { kind: "run.metadata", organizationId: run.organizationId }))}`,
  };
}

export const runRoutes: PageRoute[] = [
  { pattern: /^\/runs$/, render: list },
  { pattern: /^\/runs\/([^/]+)$/, render: detail },
];
