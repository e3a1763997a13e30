import { COUNTED_JOB_STATUSES, type CountedJobStatus } from "../../store/index.ts";
import { capped, count, duration, when } from "../format.ts";
import { type Html, html, raw } from "../html.ts";
import { href, type PageContext, type PageResult, type PageRoute } from "../page.ts";

/** The overview's figures, shared by viewers of one scope for the minimum refresh interval. */
export function overviewData(ctx: PageContext) {
  return ctx.cached("overview", async () => {
    const [counts, throughput, oldest, workers] = await Promise.all([
      ctx.store.countJobsByStatus(),
      ctx.store.throughput(),
      ctx.store.oldestDueJob(),
      ctx.store.recentWorkers(),
    ]);
    return { counts, throughput, oldest, workers };
  });
}

type Overview = Awaited<ReturnType<typeof overviewData>>;

const STATUS_LABEL: Record<CountedJobStatus, string> = {
  PENDING: "Pending",
  LEASED: "Running",
  DEAD_LETTERED: "Dead-lettered",
};

/** Per-minute bars: successes up, failed attempts down, minutes not counted (cap reached) greyed. */
function throughputChart(data: Overview["throughput"]): Html {
  const width = 720;
  const height = 90;
  const mid = 60;
  const slot = width / data.minutes.length;
  const peak = Math.max(1, ...data.minutes.map((m) => Math.max(m.succeeded, m.failed)));
  const countedFrom = Math.max(
    ...(["succeeded", "failed"] as const).map((k) => data.countedFrom[k]?.getTime() ?? Number.NEGATIVE_INFINITY),
  );
  const bars = data.minutes.map((m, i) => {
    const x = (i * slot).toFixed(1);
    const w = Math.max(1, slot - 2).toFixed(1);
    const gap = m.at.getTime() + 60_000 <= countedFrom;
    const up = (m.succeeded / peak) * (mid - 4);
    const down = (m.failed / peak) * (height - mid - 4);
    const label = `${m.at.toISOString().slice(11, 16)}Z: ${m.succeeded} succeeded, ${m.failed} failed attempts`;
    return `<g><title>${gap ? `${label} (not all counted)` : label}</title>${
      gap ? `<rect class="gap" x="${x}" y="0" width="${w}" height="${height}"/>` : ""
    }<rect class="succeeded" x="${x}" y="${(mid - up).toFixed(1)}" width="${w}" height="${up.toFixed(1)}"/><rect class="failed" x="${x}" y="${mid}" width="${w}" height="${down.toFixed(1)}"/></g>`;
  });
  // Built from numbers and fixed text only.
  return raw(
    `<svg class="chart" viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img" aria-label="Jobs per minute, last hour">${bars.join("")}<line x1="0" x2="${width}" y1="${mid}" y2="${mid}" stroke="#c9ced6"/></svg>`,
  );
}

async function render(ctx: PageContext): Promise<PageResult> {
  const data = await overviewData(ctx);
  const { counts, throughput, oldest, workers } = data;
  const cards = html`<div class="cards">
    ${COUNTED_JOB_STATUSES.map(
      (status) => html`<div data-count="${status}">
        <div class="label">${STATUS_LABEL[status]}</div>
        <div class="value"><a href="${status === "DEAD_LETTERED" ? href(ctx, "/dead-letters") : href(ctx, "/jobs", { status })}">${capped(counts.byStatus[status])}</a></div>
      </div>`,
    )}
    <div data-count="OLDEST_DUE">
      <div class="label">Oldest due job waiting</div>
      <div class="value">${oldest === null ? "—" : html`<a href="${href(ctx, `/jobs/${oldest.jobId}`)}">${duration(oldest.waitingMs)}</a>`}</div>
    </div>
    <div data-count="SUCCEEDED_1H">
      <div class="label">Succeeded, last hour</div>
      <div class="value">${capped(throughput.totals.succeeded)}</div>
    </div>
    <div data-count="FAILED_1H">
      <div class="label">Failed attempts, last hour</div>
      <div class="value">${capped(throughput.totals.failed)}</div>
    </div>
  </div>`;

  const types = new Map<string, Partial<Record<CountedJobStatus, { count: number; capped: boolean }>>>();
  for (const row of counts.byType) {
    const entry = types.get(row.jobType) ?? {};
    entry[row.status] = { count: row.count, capped: row.capped };
    types.set(row.jobType, entry);
  }
  const cell = (c: { count: number; capped: boolean } | undefined) =>
    c === undefined ? html`<span class="muted">0</span>` : c.capped ? `≥ ${count(c.count)}` : count(c.count);
  const byType =
    types.size === 0
      ? html`<p class="muted">No pending, running or dead-lettered jobs.</p>`
      : html`<table data-table="by-type">
        <thead><tr><th>Job type</th>${COUNTED_JOB_STATUSES.map((s) => html`<th class="num">${STATUS_LABEL[s]}</th>`)}</tr></thead>
        <tbody>${[...types.entries()].map(
          ([jobType, entry]) => html`<tr data-type="${jobType}">
            <td><a href="${href(ctx, "/jobs", { type: jobType })}">${jobType}</a></td>
            ${COUNTED_JOB_STATUSES.map((s) => html`<td class="num" data-status="${s}">${cell(entry[s])}</td>`)}
          </tr>`,
        )}</tbody></table>`;
  const cappedNote = COUNTED_JOB_STATUSES.some((s) => counts.byStatus[s].capped)
    ? html`<p class="muted">Each status is counted over at most ${count(ctx.options.countCap)} rows, so a large
        table costs no more than a small one: a figure with + (or ≥) is a lower bound.</p>`
    : "";

  const workerTable =
    workers.length === 0
      ? html`<p class="muted">No worker has claimed a job recently.</p>`
      : html`<table data-table="workers">
        <thead><tr><th>Worker</th><th class="num">Holding</th><th class="num">Recent attempts</th><th>Last claim</th><th>Last heartbeat</th></tr></thead>
        <tbody>${workers.map(
          (w) => html`<tr><td><code>${w.workerId}</code></td><td class="num">${count(w.leased)}</td>
            <td class="num">${count(w.recentAttempts)}</td><td>${when(w.lastClaimAt, ctx.now)}</td>
            <td>${when(w.lastHeartbeatAt, ctx.now)}</td></tr>`,
        )}</tbody></table>`;

  return {
    title: "Overview",
    body: html`${cards}
      <section class="panel"><h2>Jobs per minute, last hour</h2>${throughputChart(throughput)}
        <p class="legend"><span class="swatch succeeded"></span> succeeded above the line,
          <span class="swatch failed"></span> failed attempts below, since ${when(throughput.from, ctx.now)}.</p>
      </section>
      <h2>By job type</h2>${byType}${cappedNote}
      <h2>Workers</h2>${workerTable}`,
  };
}

export const overviewRoutes: PageRoute[] = [{ pattern: /^\/$/, render }];
