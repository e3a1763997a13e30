import { ERROR_CATALOG } from "../core/index.ts";
import { assetPath } from "./assets.ts";
import { CSRF_FIELD, CSRF_HEADER } from "./csrf.ts";
import type { DashboardStore } from "./data.ts";
import { type Html, html } from "./html.ts";
import type { DashboardMutation, DashboardScope, RedactContext, ResolvedOptions } from "./options.ts";

/** What a page renders from: the request, the viewer's scope-bound store and what it may do. */
export interface PageContext {
  request: Request;
  url: URL;
  /** The mount path without a trailing slash (`""` at the root). */
  base: string;
  scope: DashboardScope;
  store: DashboardStore;
  options: ResolvedOptions;
  csrfToken: string;
  /** Changes this viewer may make (none in read-only mode). */
  allowed: ReadonlySet<DashboardMutation>;
  /** Path segments captured by the route. */
  params: string[];
  now: number;
  /**
   * `load()`'s result for this viewer's scope, reused for the minimum refresh interval however
   * many viewers ask: the server's bound on what live pages cost the database.
   */
  cached<T>(key: string, load: () => Promise<T>): Promise<T>;
}

/** What a page handler returns; the layout wraps it. */
export interface PageResult {
  title: string;
  /** Filters and forms: outside the live region, so a refresh never disturbs typing. */
  controls?: Html;
  /** The content that live updates refresh in place. */
  body: Html;
  status?: number;
}

/** A link inside the dashboard: `href(ctx, "/jobs", { status: "PENDING" })`; empty values are left out. */
export function href(ctx: Pick<PageContext, "base">, path: string, query: Record<string, string | undefined> = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== "") params.set(key, value);
  const search = params.toString();
  return `${ctx.base}${path}${search === "" ? "" : `?${search}`}`;
}

/** A JSON value after the `redact` hook. */
export function redacted(ctx: PageContext, value: unknown, context: RedactContext): unknown {
  return ctx.options.redact(value, context);
}

/**
 * A button that makes a change: a POST form carrying the CSRF token and the page to come back
 * to. Rendered only when the viewer may make that change (never in read-only mode).
 */
export function actionButton(
  ctx: PageContext,
  spec: { action: DashboardMutation; path: string; label: string; confirm?: string; danger?: boolean },
): Html {
  if (!ctx.allowed.has(spec.action)) return html``;
  return html`<form method="post" action="${ctx.base}${spec.path}" class="inline"${
    spec.confirm === undefined ? "" : html` hx-confirm="${spec.confirm}"`
  }>
    <input type="hidden" name="${CSRF_FIELD}" value="${ctx.csrfToken}">
    <input type="hidden" name="returnTo" value="${ctx.url.pathname}${ctx.url.search}">
    <button type="submit" class="btn${spec.danger ? " danger" : ""}" data-action="${spec.action}">${spec.label}</button>
  </form>`;
}

const NAV: [path: string, label: string][] = [
  ["/", "Overview"],
  ["/jobs", "Jobs"],
  ["/dead-letters", "Dead letters"],
  ["/runs", "Workflow runs"],
  ["/schedules", "Schedules"],
  ["/job-types", "Job types"],
];

function navItem(ctx: PageContext, path: string, label: string): Html {
  const rest = ctx.url.pathname.slice(ctx.base.length) || "/";
  const current = path === "/" ? rest === "/" : rest === path || rest.startsWith(`${path}/`);
  return html`<a href="${ctx.base}${path}"${current ? html` aria-current="page"` : ""}>${label}</a>`;
}

/** The htmx settings: no eval (the CSP forbids it), errors with a page (409, 404) are shown. */
const HTMX_CONFIG = JSON.stringify({
  allowEval: false,
  allowScriptTags: false,
  includeIndicatorStyles: false,
  historyCacheSize: 0,
  responseHandling: [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "[4]..", swap: true, error: false },
    { code: "...", swap: true, error: true },
  ],
});

/** The whole document: head with the packaged assets, navigation, controls and the live region. */
export function layout(ctx: PageContext, page: PageResult): Html {
  const scopeLabel =
    "organizationId" in ctx.scope
      ? html`organization <code title="${ctx.scope.organizationId}">…${ctx.scope.organizationId.slice(-12)}</code>`
      : "all organizations";
  const query = ctx.url.pathname.endsWith("/search") ? (ctx.url.searchParams.get("q") ?? "") : "";
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${page.title} · runledger</title>
<link rel="stylesheet" href="${ctx.base}${assetPath("dashboard.css")}">
<meta name="htmx-config" content="${HTMX_CONFIG}">
<meta name="runledger-events" content="${ctx.base}/events">
<meta name="runledger-poll-ms" content="${ctx.options.pollIntervalMs}">
<script src="${ctx.base}${assetPath("htmx.min.js")}" defer></script>
<script src="${ctx.base}${assetPath("idiomorph-ext.min.js")}" defer></script>
<script src="${ctx.base}${assetPath("dashboard.js")}" defer></script>
</head>
<body hx-boost="true" hx-ext="morph" hx-headers="${JSON.stringify({ [CSRF_HEADER]: ctx.csrfToken })}">
<header class="top">
  <a class="brand" href="${ctx.base}/">runledger</a>
  <nav>${NAV.map(([path, label]) => navItem(ctx, path, label))}</nav>
  <form class="search" method="get" action="${ctx.base}/search" role="search">
    <input type="search" name="q" value="${query}" placeholder="Job or run id, idempotency key" aria-label="Search">
  </form>
  <span class="scope">${scopeLabel}</span>
  ${ctx.options.readOnly ? html`<span class="badge readonly" title="Changes are refused">read-only</span>` : ""}
  <button type="button" class="btn live" id="live-toggle" aria-pressed="true" title="Pause or resume live updates">live</button>
</header>
<main>
<h1>${page.title}</h1>
${page.controls ?? ""}
<div id="live" hx-get="${ctx.url.pathname}${ctx.url.search}" hx-trigger="runledger:refresh from:body"
  hx-select="#live" hx-swap="morph:outerHTML" hx-push-url="false">
${notice(ctx)}
${page.body}
</div>
</main>
</body>
</html>`;
}

/** The outcome of the change that redirected here (`?done=` / `?error=`), from fixed texts only. */
function notice(ctx: PageContext): Html {
  const done = ctx.url.searchParams.get("done");
  const error = ctx.url.searchParams.get("error");
  if (done !== null && DONE[done] !== undefined) return html`<p class="notice ok" role="status">${DONE[done]}</p>`;
  if (error !== null) return html`<p class="notice error" role="alert">${errorText(error)}</p>`;
  return html``;
}

const DONE: Record<string, string> = {
  "job.cancel": "Job canceled.",
  "job.requeue": "Job requeued as a new run.",
  "dead_letters.requeue": "Dead letters requeued as new runs.",
  "run.cancel": "Workflow run canceled.",
  "gate.approve": "Gate approved.",
  "gate.reject": "Gate rejected.",
  "schedule.pause": "Schedule paused.",
  "schedule.resume": "Schedule resumed.",
  "run.retry": "The run's failed steps run again.",
  "job_type.pause": "Job type paused: no worker claims its jobs.",
  "job_type.resume": "Job type resumed.",
};

/** The catalog's client-safe message for an error code carried in a redirect; a generic text otherwise. */
function errorText(code: string): string {
  const entry = (ERROR_CATALOG as Record<string, readonly [string, string] | undefined>)[code];
  return entry?.[1] ?? "The change was not made.";
}

/** A page that cannot be shown: the handler renders `message` with `status`. */
export class PageError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A route below the mount path; `render` returns a page, or a `Response` (a redirect). */
export interface PageRoute {
  pattern: RegExp;
  render(ctx: PageContext): Promise<PageResult | Response>;
}

/** A keyset cursor in a URL: `<ISO time>_<uuid>`. */
export function encodeCursor(at: Date, id: string): string {
  return `${at.toISOString()}_${id}`;
}

/** The cursor of `?after=`, undefined when absent; a malformed one is a 400. */
export function decodeCursor(ctx: PageContext): { at: Date; id: string } | undefined {
  const text = ctx.url.searchParams.get("after");
  if (text === null || text === "") return undefined;
  const [iso, id] = text.split("_");
  const at = new Date(iso ?? "");
  if (id === undefined || Number.isNaN(at.getTime()) || !/^[0-9a-f-]{36}$/i.test(id)) {
    throw new PageError(400, "The page cursor is not valid.");
  }
  return { at, id };
}

/** "Next page" link keeping the current filters; nothing on the last page. */
export function nextPageLink(ctx: PageContext, after: string | null): Html {
  if (after === null) return html``;
  const params = new URLSearchParams(ctx.url.search);
  params.delete("after");
  params.delete("done");
  params.delete("error");
  params.set("after", after);
  return html`<p class="pager"><a href="${ctx.url.pathname}?${params.toString()}" rel="next">Next page →</a></p>`;
}

/** One query parameter, trimmed; undefined when absent or blank. */
export function param(ctx: PageContext, name: string): string | undefined {
  const value = ctx.url.searchParams.get(name)?.trim();
  return value === undefined || value === "" ? undefined : value;
}

/** A query parameter that must be one of `allowed` (a 400 otherwise). */
export function oneOf<T extends string>(ctx: PageContext, name: string, allowed: readonly T[]): T | undefined {
  const value = param(ctx, name);
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new PageError(400, `Unknown ${name}.`);
  return value as T;
}

/** The organization column, shown only to viewers of every organization. */
export function orgCell(ctx: PageContext, organizationId: string | null): Html {
  if ("organizationId" in ctx.scope) return html``;
  return html`<td>${organizationId === null ? html`<span class="muted">-</span>` : html`<code>${organizationId}</code>`}</td>`;
}

export function orgHeader(ctx: PageContext): Html {
  return "organizationId" in ctx.scope ? html`` : html`<th>Organization</th>`;
}
