import { RunledgerError } from "../core/index.ts";
import { ACTIONS, NotFoundError } from "./actions.ts";
import { assetResponse } from "./assets.ts";
import { CSRF_FIELD, CSRF_HEADER, createCsrf } from "./csrf.ts";
import { storeFor } from "./data.ts";
import { html } from "./html.ts";
import { eventStream, LiveHub } from "./live.ts";
import {
  checkScope,
  DASHBOARD_ACTIONS,
  type DashboardMutation,
  type DashboardOptions,
  type DashboardScope,
  type ResolvedOptions,
  resolveOptions,
} from "./options.ts";
import { layout, type PageContext, PageError, type PageResult, type PageRoute } from "./page.ts";
import { deadLetterRoutes } from "./pages/dead-letters.ts";
import { jobTypeRoutes } from "./pages/job-types.ts";
import { jobRoutes } from "./pages/jobs.ts";
import { overviewRoutes } from "./pages/overview.ts";
import { runRoutes } from "./pages/runs.ts";
import { scheduleRoutes } from "./pages/schedules.ts";

const PAGES: PageRoute[] = [
  ...overviewRoutes,
  ...jobRoutes,
  ...deadLetterRoutes,
  ...runRoutes,
  ...scheduleRoutes,
  ...jobTypeRoutes,
];
const MUTATIONS = DASHBOARD_ACTIONS.filter((a): a is DashboardMutation => a !== "read");
const MAX_FORM_BYTES = 64 * 1024;

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
};

/** A fetch handler: `(request) => Promise<Response>`, mountable in any server that speaks `Request`. */
export type DashboardHandler = (request: Request) => Promise<Response>;

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      ...SECURITY_HEADERS,
      ...headers,
    },
  });
}

/** Decode captured path segments; a malformed escape is not a page. */
function decodeParams(match: RegExpExecArray): string[] | undefined {
  try {
    return match.slice(1).map((p) => decodeURIComponent(p));
  } catch {
    return undefined;
  }
}

function match<T extends { pattern: RegExp }>(routes: T[], path: string): { route: T; params: string[] } | undefined {
  for (const route of routes) {
    const found = route.pattern.exec(path);
    if (found !== null) {
      const params = decodeParams(found);
      return params === undefined ? undefined : { route, params };
    }
  }
  return undefined;
}

/** A form body, refused past 64 KiB or in another encoding. */
async function readForm(request: Request): Promise<URLSearchParams | Response> {
  const type = request.headers.get("content-type") ?? "";
  if (!type.startsWith("application/x-www-form-urlencoded"))
    return text(415, "Send the form as application/x-www-form-urlencoded.");
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_FORM_BYTES) return text(413, "Form too large.");
  const reader = request.body?.getReader();
  if (reader === undefined) return new URLSearchParams();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_FORM_BYTES) {
      await reader.cancel();
      return text(413, "Form too large.");
    }
    chunks.push(value);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

/**
 * Create the dashboard: a fetch handler serving the pages, live updates and assets below
 * `basePath`, calling `authorize` for every request and every change.
 */
export function createDashboard(options: DashboardOptions): DashboardHandler {
  const resolved = resolveOptions(options);
  const base = resolved.basePath;
  const csrf = createCsrf(options.csrfSecret, base === "" ? "/" : base);
  const hub = new LiveHub(resolved.db, (error) => resolved.onError(error, new Request("http://localhost/")));
  const cache = new Map<string, { at: number; value: Promise<unknown> }>();

  const cached = (scope: DashboardScope) =>
    function get<T>(key: string, load: () => Promise<T>): Promise<T> {
      const full = `${"organizationId" in scope ? scope.organizationId : "*"}:${key}`;
      const hit = cache.get(full);
      if (hit !== undefined && Date.now() - hit.at < resolved.minIntervalMs) return hit.value as Promise<T>;
      const value = load();
      cache.set(full, { at: Date.now(), value });
      value.catch(() => cache.delete(full));
      if (cache.size > 1000) cache.delete(cache.keys().next().value!);
      return value;
    };

  return async function dashboard(request: Request): Promise<Response> {
    try {
      const url = new URL(request.url);
      if (!(url.pathname === base || url.pathname.startsWith(`${base}/`))) return text(404, "Not found.");
      const path = url.pathname.slice(base.length) || "/";
      const method = request.method.toUpperCase();

      if (method === "GET" || method === "HEAD") {
        if (path.startsWith("/assets/")) return assetResponse(path.slice(8), request) ?? text(404, "Not found.");
        const scope = checkScope(await resolved.scope(request));
        if (!(await resolved.authorize(request, "read", scope))) return text(403, "Forbidden.");
        if (path === "/events") {
          return eventStream(hub, request.signal, resolved);
        }
        const found = match(PAGES, path);
        if (found === undefined) return text(404, "Not found.");
        return await renderPage(request, url, scope, found.route, found.params);
      }

      if (method === "POST") {
        // Read-only is decided here, before anything else runs: no hook can turn it off.
        if (resolved.readOnly) return text(405, "This dashboard is read-only.", { allow: "GET, HEAD" });
        const found = match(ACTIONS, path);
        if (found === undefined) return text(404, "Not found.");
        const form = await readForm(request);
        if (form instanceof Response) return form;
        if (!csrf.verify(request, form.get(CSRF_FIELD) ?? request.headers.get(CSRF_HEADER))) {
          return text(403, "Missing or invalid CSRF token: reload the page and try again.");
        }
        const scope = checkScope(await resolved.scope(request));
        const { route, params } = found;
        if (!(await resolved.authorize(request, route.action, scope, route.target(params)))) {
          return text(403, "Forbidden.");
        }
        const back = returnTo(url, form.get("returnTo"), `${base}${route.back(params)}`);
        try {
          await route.run(storeFor(resolved.db, scope, resolved.countCap), params, form);
          back.searchParams.set("done", route.action);
        } catch (error) {
          if (error instanceof RunledgerError && error.category !== "Internal") {
            back.searchParams.set("error", error.code);
          } else if (error instanceof NotFoundError) {
            back.searchParams.set("error", "not_found");
          } else throw error;
        }
        return new Response(null, { status: 303, headers: { location: `${back.pathname}${back.search}` } });
      }

      return text(405, "Method not allowed.", { allow: resolved.readOnly ? "GET, HEAD" : "GET, HEAD, POST" });
    } catch (error) {
      if (error instanceof PageError) return text(error.status, error.message);
      if (error instanceof RunledgerError && error.category === "Validation") return text(400, error.message);
      resolved.onError(error instanceof RunledgerError ? error.internalMessage() : error, request);
      return text(500, "The dashboard failed to answer; the server log has the details.");
    }
  };

  /** Which changes this viewer may make; none in read-only mode. */
  async function allowedFor(request: Request, scope: DashboardScope): Promise<Set<DashboardMutation>> {
    if (resolved.readOnly) return new Set();
    const checks = await Promise.all(MUTATIONS.map((action) => resolved.authorize(request, action, scope)));
    return new Set(MUTATIONS.filter((_, i) => checks[i] === true));
  }

  async function renderPage(
    request: Request,
    url: URL,
    scope: DashboardScope,
    route: PageRoute,
    params: string[],
  ): Promise<Response> {
    const token = csrf.tokenFor(request);
    const ctx: PageContext = {
      request,
      url,
      base,
      scope,
      store: storeFor(resolved.db, scope, resolved.countCap),
      options: resolved,
      csrfToken: token.token,
      allowed: await allowedFor(request, scope),
      params,
      now: Date.now(),
      cached: cached(scope),
    };
    let result: PageResult | Response;
    try {
      result = await route.render(ctx);
    } catch (error) {
      if (!(error instanceof PageError)) throw error;
      result = {
        title: error.status === 404 ? "Not found" : "Bad request",
        body: html`<p>${error.message}</p>`,
        status: error.status,
      };
    }
    if (result instanceof Response) return result;
    const headers = new Headers({
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      ...SECURITY_HEADERS,
    });
    if (token.setCookie !== undefined) headers.append("set-cookie", token.setCookie);
    const body = request.method.toUpperCase() === "HEAD" ? null : layout(ctx, result).value;
    return new Response(body, { status: result.status ?? 200, headers });
  }

  /** The page to go back to after a change: the form's `returnTo` when it is a dashboard page, else `fallback`. */
  function returnTo(url: URL, given: string | null, fallback: string): URL {
    if (given?.startsWith("/") && !given.startsWith("//")) {
      const target = new URL(given, url);
      if (target.origin === url.origin && (target.pathname === base || target.pathname.startsWith(`${base}/`))) {
        target.searchParams.delete("done");
        target.searchParams.delete("error");
        return target;
      }
    }
    return new URL(fallback, url);
  }
}

export type { ResolvedOptions };
