import { COUNTED_JOB_STATUSES } from "../../store/index.ts";
import { count, duration } from "../format.ts";
import { html } from "../html.ts";
import { actionButton, href, nextPageLink, type PageContext, type PageResult, type PageRoute, param } from "../page.ts";
import { overviewData } from "./overview.ts";

/** A type's flow-control limits in a few words ("none" when it has none). */
function limits(t: {
  maxConcurrency: number | null;
  maxConcurrencyPerKey: number | null;
  rateLimit: { limit: number; intervalMs: number } | null;
}): string {
  const parts: string[] = [];
  if (t.maxConcurrency !== null) parts.push(`${t.maxConcurrency} running`);
  if (t.maxConcurrencyPerKey !== null) parts.push(`${t.maxConcurrencyPerKey} per key`);
  if (t.rateLimit !== null) parts.push(`${t.rateLimit.limit} per ${duration(t.rateLimit.intervalMs)}`);
  return parts.length === 0 ? "none" : parts.join(", ");
}

async function list(ctx: PageContext): Promise<PageResult> {
  const after = param(ctx, "after");
  const [page, overview] = await Promise.all([
    ctx.store.jobTypes({ limit: ctx.options.pageSize, after }),
    overviewData(ctx),
  ]);
  const counts = new Map<string, string>();
  for (const row of overview.counts.byType) {
    counts.set(`${row.jobType}\u0000${row.status}`, row.capped ? `≥ ${count(row.count)}` : count(row.count));
  }
  const rows = page.items.map(
    (t) => html`<tr data-type="${t.jobType}">
      <td><a href="${href(ctx, "/jobs", { type: t.jobType })}">${t.jobType}</a></td>
      <td>${t.isEnabled ? html`<span class="badge s-succeeded">enabled</span>` : html`<span class="badge s-canceled">disabled</span>`}</td>
      <td>${t.pausedAt === null ? html`<span class="badge s-succeeded">claimed</span>` : html`<span class="badge s-canceled">paused</span>`}</td>
      <td data-field="limits">${limits(t)}</td>
      ${COUNTED_JOB_STATUSES.map((s) => html`<td class="num">${counts.get(`${t.jobType}\u0000${s}`) ?? "0"}</td>`)}
      <td class="num">${t.version}</td><td class="num">${t.maxAttempts}</td>
      <td class="num">${duration(t.defaultTimeoutSeconds * 1000)}</td><td class="num">${t.defaultPriority}</td>
      <td>${
        t.pausedAt === null
          ? actionButton(ctx, {
              action: "job_type.pause",
              path: `/job-types/${encodeURIComponent(t.jobType)}/pause`,
              label: "Pause",
              confirm: `Stop every worker from claiming ${t.jobType} jobs (for every organization)?`,
            })
          : actionButton(ctx, {
              action: "job_type.resume",
              path: `/job-types/${encodeURIComponent(t.jobType)}/resume`,
              label: "Resume",
            })
      }</td>
    </tr>`,
  );
  return {
    title: "Job types",
    body:
      page.items.length === 0
        ? html`<p class="muted">No job types are defined (a worker's <code>catalog.syncDefinitions(db)</code> writes them).</p>`
        : html`<table data-table="job-types"><thead><tr><th>Job type</th><th>New jobs</th><th>Claims</th><th>Limits</th><th class="num">Pending</th>
            <th class="num">Running</th><th class="num">Dead-lettered</th><th class="num">Version</th>
            <th class="num">Max attempts</th><th class="num">Timeout</th><th class="num">Priority</th><th></th></tr></thead>
            <tbody>${rows}</tbody></table>${nextPageLink(ctx, page.next)}`,
  };
}

export const jobTypeRoutes: PageRoute[] = [{ pattern: /^\/job-types$/, render: list }];
