import type { ServerResponse } from "node:http";
import type { SupervisorHealth } from "./supervisor.ts";

const HEADERS = { "content-type": "application/json", "cache-control": "no-store" };

/**
 * A readiness probe: 200 with `supervisor.health()` as JSON while it is ready (status `ok`), 503
 * otherwise (starting, degraded, draining, stopped). Mount it on `node:http`/express as
 * `(req, res)`, or call it with a fetch `Request` alone to get a `Response`.
 */
export function healthHandler(supervisor: { health(): SupervisorHealth }) {
  return (_request?: unknown, response?: ServerResponse): Response | undefined => {
    const health = supervisor.health();
    const status = health.ready ? 200 : 503;
    const body = JSON.stringify(health);
    if (response === undefined) return new Response(body, { status, headers: HEADERS });
    response.writeHead(status, HEADERS).end(body);
    return undefined;
  };
}
