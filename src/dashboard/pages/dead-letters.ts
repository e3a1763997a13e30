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
  </form>`;
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

export const deadLetterRoutes: PageRoute[] = [{ pattern: /^\/dead-letters$/, render: list }];
