import { CSRF_FIELD } from "../csrf.ts";
import { shortId, when } from "../format.ts";
import { html } from "../html.ts";
import {
  actionButton,
  decodeCursor,
  encodeCursor,
  href,
  nextPageLink,
  orgCell,
  orgHeader,
  type PageContext,
  type PageResult,
  type PageRoute,
  param,
} from "../page.ts";

/** Job types for a filter's drop-down (definitions are few; the first 500 by name). */
export async function jobTypeOptions(ctx: PageContext, selected: string | undefined) {
  const types = await ctx.cached("job-types", () => ctx.store.jobTypes({ limit: 500 }));
  return html`<option value="">any</option>${types.items.map(
    (t) => html`<option value="${t.jobType}"${t.jobType === selected ? " selected" : ""}>${t.jobType}</option>`,
  )}`;
}

async function list(ctx: PageContext): Promise<PageResult> {
  const type = param(ctx, "type");
  const after = decodeCursor(ctx);
  const page = await ctx.store.deadLetters({
    jobType: type,
    limit: ctx.options.pageSize,
    after: after === undefined ? undefined : { failedAt: after.at, jobId: after.id },
  });
  const controls = html`<form class="filters" method="get" action="${ctx.base}/dead-letters">
    <label>Job type <select name="type">${await jobTypeOptions(ctx, type)}</select></label>
    <button class="btn" type="submit">Filter</button>
  </form>${
    ctx.allowed.has("dead_letters.requeue")
      ? html` <a class="btn" data-action="dead_letters.requeue" href="${href(ctx, "/dead-letters/requeue", { type })}">Requeue all${
          type === undefined ? "" : html` of ${type}`
        }…</a>`
      : ""
  }`;
  const rows = page.items.map(
    (d) => html`<tr data-job="${d.jobId}">
      <td><a href="${href(ctx, `/jobs/${d.jobId}`)}">${shortId(d.jobId)}</a></td>
      <td>${d.jobType}</td>
      <td>${d.errorCode === null ? "" : html`<code>${d.errorCode}</code>`}</td>
      <td>${(d.errorMessage ?? "").slice(0, 200)}</td>
      <td class="num">${d.attempt}</td>
      <td>${when(d.failedAt, ctx.now)}</td>
      ${orgCell(ctx, d.organizationId)}
      <td>${actionButton(ctx, { action: "job.requeue", path: `/jobs/${d.jobId}/requeue`, label: "Requeue" })}</td>
    </tr>`,
  );
  const next = page.next === null ? null : encodeCursor(page.next.failedAt, page.next.jobId);
  return {
    title: "Dead letters",
    controls,
    body:
      page.items.length === 0
        ? html`<p class="muted">No dead-lettered jobs${type === undefined ? "" : html` of type ${type}`}.</p>`
        : html`<table data-table="dead-letters">
          <thead><tr><th>Job</th><th>Type</th><th>Error</th><th>Message</th><th class="num">Attempts</th><th>Failed</th>
            ${orgHeader(ctx)}<th></th></tr></thead>
          <tbody>${rows}</tbody></table>${nextPageLink(ctx, next)}`,
  };
}

/**
 * The confirmation of a by-filter requeue: the dry run's count (dead letters of the viewer's scope,
 * of the chosen type), and the form that requeues them. Counting reads the jobs table, so it runs
 * here, on demand, never on the list page.
 */
async function confirmRequeue(ctx: PageContext): Promise<PageResult> {
  const type = param(ctx, "type");
  const of = type === undefined ? "" : html` of type <code>${type}</code>`;
  if (!ctx.allowed.has("dead_letters.requeue")) {
    return {
      title: "Requeue dead letters",
      status: 403,
      body: html`<p class="muted">You may not requeue dead letters.</p>`,
    };
  }
  const count = await ctx.store.countDeadLetters(type);
  const n = `${count.requeueable.toLocaleString("en-US")}${count.capped ? "+" : ""}`;
  const skipped = count.matched - count.requeueable;
  const action = type === undefined ? "/dead-letters/requeue" : `/dead-letters/requeue/${encodeURIComponent(type)}`;
  const back = href(ctx, "/dead-letters", { type });
  return {
    title: "Requeue dead letters",
    body:
      count.requeueable === 0
        ? html`<p data-dry-run="0">No dead letters${of} to requeue${
            skipped > 0 ? html` (${skipped} belong to workflow steps: retry their runs)` : ""
          }.</p><p><a href="${back}">Back to the dead letters</a></p>`
        : html`<p data-dry-run="${count.requeueable}">Dry run: <strong>${n}</strong> dead-lettered jobs${of} would run
            again as a new run${skipped > 0 ? html`; ${skipped} that belong to workflow steps are passed over (retry their runs)` : ""}.
            ${count.capped ? html` At most 10,000 are requeued at a time.` : ""}</p>
          <form method="post" action="${ctx.base}${action}">
            <input type="hidden" name="${CSRF_FIELD}" value="${ctx.csrfToken}">
            <input type="hidden" name="returnTo" value="${back}">
            <label>Reason <input type="text" name="reason" maxlength="500" placeholder="requeued in the dashboard"></label>
            <button type="submit" class="btn danger" data-action="dead_letters.requeue">Requeue ${n} jobs</button>
            <a href="${back}">Cancel</a>
          </form>`,
  };
}

export const deadLetterRoutes: PageRoute[] = [
  { pattern: /^\/dead-letters$/, render: list },
  { pattern: /^\/dead-letters\/requeue$/, render: confirmRequeue },
];
