import { json, when } from "../format.ts";
import { html } from "../html.ts";
import {
  actionButton,
  nextPageLink,
  orgCell,
  orgHeader,
  type PageContext,
  type PageResult,
  type PageRoute,
  param,
  redacted,
} from "../page.ts";

async function list(ctx: PageContext): Promise<PageResult> {
  const after = param(ctx, "after");
  const { items: page, next } = await ctx.store.schedules({ limit: ctx.options.pageSize, after });
  const path = (name: string, verb: string) => `/schedules/${encodeURIComponent(name)}/${verb}`;
  const body = page.map(
    (s) => html`<tr data-schedule="${s.name}" data-active="${String(s.isActive)}">
      <td><code>${s.name}</code></td><td>${s.jobType}</td><td><code>${s.cronExpr}</code> ${s.timezone}</td>
      <td>${s.isActive ? html`<span class="badge s-succeeded">active</span>` : html`<span class="badge s-canceled">paused</span>`}</td>
      <td>${s.isActive ? when(s.nextFireAt, ctx.now) : html`<span class="muted">-</span>`}</td>
      <td>${when(s.lastFiredAt, ctx.now)}</td>
      ${orgCell(ctx, s.organizationId)}
      <td><details><summary>template</summary>${json(redacted(ctx, s.payloadTemplate, { kind: "schedule.payload_template", jobType: s.jobType, organizationId: s.organizationId }))}</details></td>
      <td>${
        s.isActive
          ? actionButton(ctx, { action: "schedule.pause", path: path(s.name, "pause"), label: "Pause" })
          : actionButton(ctx, { action: "schedule.resume", path: path(s.name, "resume"), label: "Resume" })
      }</td>
    </tr>`,
  );
  return {
    title: "Schedules",
    body:
      page.length === 0
        ? html`<p class="muted">No schedules.</p>`
        : html`<table data-table="schedules"><thead><tr><th>Name</th><th>Job type</th><th>Cron</th><th>State</th>
            <th>Next fire</th><th>Last fired</th>${orgHeader(ctx)}<th>Payload</th><th></th></tr></thead>
            <tbody>${body}</tbody></table>${nextPageLink(ctx, next)}`,
  };
}

export const scheduleRoutes: PageRoute[] = [{ pattern: /^\/schedules$/, render: list }];
