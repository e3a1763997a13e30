import { JOB_STATUSES, type JobStatus } from "../../core/index.ts";
import type { JobAttemptRecord, JobRecord } from "../../store/index.ts";
import { badge, count, duration, json, shortId, when } from "../format.ts";
import { type Html, html, raw } from "../html.ts";
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

function progress(job: Pick<JobRecord, "progressDone" | "progressTotal">): Html {
  if (job.progressTotal === null || job.progressTotal <= 0) {
    return job.progressDone === null ? html`` : html`${count(job.progressDone)}`;
  }
  const done = job.progressDone ?? 0;
  return html`<progress value="${done}" max="${job.progressTotal}"></progress> ${count(done)}/${count(job.progressTotal)}`;
}

/** One row of a job table. */
export function jobRow(ctx: PageContext, job: JobRecord): Html {
  const finishedOrDue = job.finishedAt ?? job.nextRunAt;
  return html`<tr data-job="${job.id}" data-status="${job.status}">
    <td><a href="${href(ctx, `/jobs/${job.id}`)}">${shortId(job.id)}</a></td>
    <td>${job.jobType}</td>
    <td>${badge(job.status)}</td>
    <td class="num">${job.attempt}/${job.maxAttempts}${job.runNumber > 1 ? html` <span class="muted">run ${job.runNumber}</span>` : ""}</td>
    <td>${job.stage} ${progress(job)}</td>
    <td>${when(job.createdAt, ctx.now)}</td>
    <td>${job.finishedAt === null ? html`<span class="muted">due</span> ` : ""}${when(finishedOrDue, ctx.now)}</td>
    ${orgCell(ctx, job.organizationId)}
  </tr>`;
}

export function jobTable(ctx: PageContext, jobs: JobRecord[]): Html {
  if (jobs.length === 0) return html`<p class="muted">No jobs match.</p>`;
  return html`<table data-table="jobs">
    <thead><tr><th>Job</th><th>Type</th><th>Status</th><th class="num">Attempt</th><th>Stage</th><th>Created</th>
      <th>Finished / due</th>${orgHeader(ctx)}</tr></thead>
    <tbody>${jobs.map((job) => jobRow(ctx, job))}</tbody>
  </table>`;
}

/**
 * Jobs newest first, a page at a time. Running jobs are read where they sit (the front of the
 * claim order) and dead-lettered ones have a page of their own (by failure time): both are rare
 * among millions of finished jobs, and a scan of the whole list for them would not be.
 */
async function list(ctx: PageContext): Promise<PageResult | Response> {
  const status = oneOf<JobStatus>(ctx, "status", JOB_STATUSES);
  const type = param(ctx, "type");
  if (status === "DEAD_LETTERED")
    return new Response(null, { status: 303, headers: { location: href(ctx, "/dead-letters") } });
  const after = decodeCursor(ctx);
  const page =
    status === "LEASED"
      ? await leasedPage(ctx, type)
      : await ctx.store.jobs({
          status,
          jobTypeContains: type,
          limit: ctx.options.pageSize,
          after: after === undefined ? undefined : { createdAt: after.at, id: after.id },
        });
  const controls = html`<form class="filters" method="get" action="${ctx.base}/jobs">
    <label>Status <select name="status">
      <option value="">any</option>
      ${JOB_STATUSES.map((s) => html`<option value="${s}"${s === status ? " selected" : ""}>${s}</option>`)}
    </select></label>
    <label>Job type contains <input name="type" value="${type ?? ""}" placeholder="email."></label>
    <button class="btn" type="submit">Filter</button>
    ${status !== undefined || type !== undefined ? html`<a href="${ctx.base}/jobs">clear</a>` : ""}
  </form>`;
  const next = page.next === null ? null : encodeCursor(page.next.createdAt, page.next.id);
  const note =
    "capped" in page && page.capped
      ? html`<p class="muted">Running jobs are looked for among the first ${count(ctx.options.countCap)} unfinished jobs.</p>`
      : "";
  return {
    title: "Jobs",
    controls,
    body: html`${jobTable(ctx, page.items)}${nextPageLink(ctx, next)}${note}`,
  };
}

async function leasedPage(ctx: PageContext, typeContains: string | undefined) {
  const { items, capped } = await ctx.store.leasedJobs(ctx.options.pageSize);
  const needle = typeContains?.toLowerCase();
  return {
    items: needle === undefined ? items : items.filter((job) => job.jobType.toLowerCase().includes(needle)),
    next: null,
    capped,
  };
}

function attemptTimeline(ctx: PageContext, attempts: JobAttemptRecord[]): Html {
  if (attempts.length === 0) return html`<p class="muted">No attempt yet.</p>`;
  const start = Math.min(...attempts.map((a) => a.leasedAt.getTime()));
  const end = Math.max(...attempts.map((a) => (a.finishedAt ?? new Date(ctx.now)).getTime()), start + 1);
  const width = 720;
  const rowHeight = 16;
  const bars = attempts.map((a, i) => {
    const from = ((a.startedAt.getTime() - start) / (end - start)) * width;
    const to = (((a.finishedAt ?? new Date(ctx.now)).getTime() - start) / (end - start)) * width;
    const kind = a.finishedAt === null ? "" : a.outcome === null ? " ok" : " bad";
    const took = duration((a.finishedAt ?? new Date(ctx.now)).getTime() - a.startedAt.getTime());
    const label = `run ${a.runNumber} attempt ${a.attempt}: ${a.outcome ?? (a.finishedAt === null ? "running" : "finished")}, ${took}`;
    return `<rect class="bar${kind}" x="${from.toFixed(1)}" y="${i * rowHeight + 2}" width="${Math.max(2, to - from).toFixed(1)}" height="${rowHeight - 4}"><title>${label}</title></rect>`;
  });
  // Built from numbers, a fixed vocabulary (outcomes) and durations only.
  return raw(
    `<svg class="timeline" viewBox="0 0 ${width} ${attempts.length * rowHeight}" height="${attempts.length * rowHeight}" preserveAspectRatio="none" role="img" aria-label="Attempts over time">${bars.join("")}</svg>`,
  );
}

async function detail(ctx: PageContext): Promise<PageResult> {
  const jobId = ctx.params[0]!;
  const job = await ctx.store.job(jobId);
  if (job === null) throw new PageError(404, "Job not found.");
  const [attempts, events, logs, step] = await Promise.all([
    ctx.store.jobAttempts(jobId),
    ctx.store.jobEvents(jobId),
    ctx.store.jobLogs(jobId),
    job.workflowStepId === null ? null : ctx.store.jobStep(jobId),
  ]);
  const about = { jobType: job.jobType, organizationId: job.organizationId };
  const live = job.status === "PENDING" || job.status === "LEASED";
  const actions = html`<div class="actions">
    ${live ? actionButton(ctx, { action: "job.cancel", path: `/jobs/${job.id}/cancel`, label: "Cancel", confirm: "Cancel this job?", danger: true }) : ""}
    ${!live && step === null ? actionButton(ctx, { action: "job.requeue", path: `/jobs/${job.id}/requeue`, label: "Requeue", confirm: "Run this job again as a new run?" }) : ""}
  </div>`;
  const fields = html`<dl class="fields">
    <dt>Id</dt><dd><code>${job.id}</code></dd>
    <dt>Type</dt><dd>${job.jobType}</dd>
    <dt>Status</dt><dd data-field="status">${badge(job.status)} ${job.statusReason === null ? "" : html`<span class="muted">${job.statusReason}</span>`}</dd>
    <dt>Organization</dt><dd>${job.organizationId === null ? html`<span class="muted">none</span>` : html`<code>${job.organizationId}</code>`}</dd>
    ${step === null ? "" : html`<dt>Workflow</dt><dd><a href="${href(ctx, `/runs/${step.workflowRunId}`)}">run ${shortId(step.workflowRunId)}</a>, step <code>${step.stepKey}</code></dd>`}
    <dt>Run / attempt</dt><dd>run ${job.runNumber}, attempt ${job.attempt} of ${job.maxAttempts}</dd>
    <dt>Priority</dt><dd>${job.priority}</dd>
    <dt>Stage</dt><dd>${job.stage} ${progress(job)}</dd>
    <dt>Idempotency key</dt><dd>${job.idempotencyKey === null ? html`<span class="muted">none</span>` : html`<code>${job.idempotencyKey}</code>`}</dd>
    <dt>Created</dt><dd>${when(job.createdAt, ctx.now)}</dd>
    <dt>${job.finishedAt === null ? "Due" : "Finished"}</dt><dd>${when(job.finishedAt ?? job.nextRunAt, ctx.now)}</dd>
    ${job.workerId === null ? "" : html`<dt>Worker</dt><dd><code>${job.workerId}</code>, lease until ${when(job.leaseExpiresAt, ctx.now)}, heartbeat ${when(job.lastHeartbeatAt, ctx.now)}</dd>`}
    ${job.lastErrorCode === null ? "" : html`<dt>Last error</dt><dd><code>${job.lastErrorCode}</code> ${job.lastErrorMessage ?? ""}</dd>`}
  </dl>`;
  const attemptRows = attempts.map(
    (
      a,
    ) => html`<tr><td class="num">${a.runNumber}</td><td class="num">${a.attempt}</td><td><code>${a.workerId}</code></td>
      <td>${when(a.startedAt, ctx.now)}</td>
      <td>${a.finishedAt === null ? html`<span class="muted">running</span>` : duration(a.finishedAt.getTime() - a.startedAt.getTime())}</td>
      <td>${a.outcome === null ? (a.finishedAt === null ? "" : badge("SUCCEEDED")) : badge(a.outcome)}</td>
      <td>${a.errorCode === null ? "" : html`<code>${a.errorCode}</code> ${a.errorMessage ?? ""}`}</td></tr>`,
  );
  const eventRows = events.map(
    (e) => html`<tr><td class="num">${e.id}</td><td>${badge(e.eventType)}</td><td class="num">${e.runNumber}</td>
      <td class="num">${e.attempt ?? ""}</td><td>${e.stage ?? ""}</td>
      <td>${Object.keys(e.payload).length === 0 ? "" : html`<code>${JSON.stringify(redacted(ctx, e.payload, { kind: "job.event", ...about }))}</code>`}</td>
      <td>${when(e.occurredAt, ctx.now)}</td></tr>`,
  );
  const logRows = logs.map(
    (l) => html`<tr><td>${l.level}</td><td>${l.message}</td>
      <td>${Object.keys(l.payload).length === 0 ? "" : html`<code>${JSON.stringify(redacted(ctx, l.payload, { kind: "job.log", ...about }))}</code>`}</td>
      <td>${when(l.occurredAt, ctx.now)}</td></tr>`,
  );
  return {
    title: `Job ${job.jobType}`,
    body: html`<section class="panel">${actions}${fields}</section>
      <h2>Payload</h2>${json(redacted(ctx, job.payload, { kind: "job.payload", ...about }))}
      ${job.checkpoint === null ? "" : html`<h2>Checkpoint</h2>${json(redacted(ctx, job.checkpoint, { kind: "job.checkpoint", ...about }))}`}
      <h2>Attempts</h2>${attemptTimeline(ctx, attempts)}
      ${attempts.length === 0 ? "" : html`<table data-table="attempts"><thead><tr><th class="num">Run</th><th class="num">Attempt</th><th>Worker</th><th>Started</th><th>Took</th><th>Outcome</th><th>Error</th></tr></thead><tbody>${attemptRows}</tbody></table>`}
      <h2>Events</h2>
      <table data-table="events"><thead><tr><th class="num">#</th><th>Event</th><th class="num">Run</th><th class="num">Attempt</th><th>Stage</th><th>Details</th><th>When</th></tr></thead><tbody>${eventRows}</tbody></table>
      <h2>Logs</h2>
      ${logs.length === 0 ? html`<p class="muted">No log lines.</p>` : html`<table data-table="logs"><thead><tr><th>Level</th><th>Message</th><th>Details</th><th>When</th></tr></thead><tbody>${logRows}</tbody></table>`}`,
  };
}

async function search(ctx: PageContext): Promise<PageResult | Response> {
  const query = param(ctx, "q");
  if (query === undefined)
    return { title: "Search", body: html`<p class="muted">Type a job or run id, or an idempotency key.</p>` };
  const found = await ctx.store.search(query, ctx.options.pageSize);
  const only = found.jobs.length + found.runs.length === 1;
  if (only) {
    const target = found.jobs[0] === undefined ? `/runs/${found.runs[0]!.id}` : `/jobs/${found.jobs[0].id}`;
    return new Response(null, { status: 303, headers: { location: href(ctx, target) } });
  }
  const runs =
    found.runs.length === 0
      ? ""
      : html`<h2>Workflow runs</h2><ul>${found.runs.map((r) => html`<li><a href="${href(ctx, `/runs/${r.id}`)}">${r.workflowType} ${shortId(r.id)}</a> ${badge(r.status)}</li>`)}</ul>`;
  return {
    title: `Search: ${query}`,
    body:
      found.jobs.length + found.runs.length === 0
        ? html`<p class="muted">Nothing has this id or idempotency key.</p>`
        : html`${runs}${found.jobs.length === 0 ? "" : html`<h2>Jobs</h2>${jobTable(ctx, found.jobs)}`}`,
  };
}

export const jobRoutes: PageRoute[] = [
  { pattern: /^\/jobs$/, render: list },
  { pattern: /^\/jobs\/([^/]+)$/, render: detail },
  { pattern: /^\/search$/, render: search },
];
