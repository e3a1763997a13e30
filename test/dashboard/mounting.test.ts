import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../../src/core/index.ts";
import { createDashboard, type DashboardHandler, toNodeListener } from "../../src/dashboard/index.ts";
import { enqueueJob, getJobById } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";
import { nextRouteHandlers } from "./next-route.ts";

/*
 * The same dashboard mounted under /admin/jobs in each server the README shows: a page loads, an
 * asset loads, and a change (a POST form with its CSRF token) goes through.
 */

const { db } = await useTestDatabase();
const BASE = "/admin/jobs";
let dashboard: DashboardHandler;

beforeAll(async () => {
  await defineJob(db, "mount.job");
  dashboard = createDashboard({ db, basePath: BASE, authorize: () => true });
});

type Fetch = (path: string, init?: RequestInit) => Promise<Response>;

/** Load the overview, then cancel a job with the page's cookie and token, through `fetchFrom`. */
async function exercise(fetchFrom: Fetch): Promise<void> {
  for (const path of [BASE, `${BASE}/`, `${BASE}/jobs?status=PENDING`]) {
    const page = await fetchFrom(path);
    expect(page.status, path).toBe(200);
    expect(await page.text()).toContain(`href="${BASE}/jobs"`);
  }
  const overview = await fetchFrom(`${BASE}/`);
  const html = await overview.text();
  const asset = /src="([^"]+htmx\.min\.js[^"]*)"/.exec(html)![1]!;
  const script = await fetchFrom(asset);
  expect(script.status).toBe(200);
  expect(script.headers.get("content-type")).toContain("javascript");
  expect((await script.text()).length).toBeGreaterThan(40_000);

  const job = await enqueueJob(db, { jobType: "mount.job" });
  const cookie = overview.headers.getSetCookie()[0]!.split(";")[0]!;
  const token = /x-csrf-token&quot;:&quot;([^&]+)&quot;/.exec(html)![1]!;
  const done = await fetchFrom(`${BASE}/jobs/${job.id}/cancel`, {
    method: "POST",
    headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ _csrf: token }).toString(),
    redirect: "manual",
  });
  expect(done.status).toBe(303);
  expect(done.headers.get("location")).toBe(`${BASE}/jobs/${job.id}?done=job.cancel`);
  expect((await getJobById(db, job.id, ALL_ORGANIZATIONS))!.status).toBe("CANCELED");
}

/** Fetch against a listening Node server. */
async function over(server: Server): Promise<{ fetch: Fetch; close(): Promise<void> }> {
  if (!server.listening) await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    fetch: (path, init) => fetch(`http://127.0.0.1:${port}${path}`, init),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("mounting", () => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closers) await close();
  });

  it("node:http", async () => {
    const listener = toNodeListener(dashboard);
    const server = createServer((req, res) => {
      if (req.url === BASE || req.url?.startsWith(`${BASE}/`)) return listener(req, res);
      res.writeHead(404).end("app");
    });
    const client = await over(server);
    closers.push(client.close);
    await exercise(client.fetch);
    expect((await client.fetch("/elsewhere")).status).toBe(404);
  });

  it("node:http streams live updates", async () => {
    const server = createServer(toNodeListener(dashboard));
    const client = await over(server);
    closers.push(client.close);
    const controller = new AbortController();
    const response = await client.fetch(`${BASE}/events`, { signal: controller.signal });
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const reader = response.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain("event: ready");
    controller.abort();
  });

  it("Express", async () => {
    const app = express();
    // A body parser mounted before the dashboard consumes the form; the adapter rebuilds it.
    app.use(express.urlencoded({ extended: false }));
    app.use(BASE, toNodeListener(dashboard));
    app.get("/", (_req, res) => {
      res.send("app");
    });
    const client = await over(createServer(app));
    closers.push(client.close);
    await exercise(client.fetch);
    expect(await (await client.fetch("/")).text()).toBe("app");
  });

  it("Fastify", async () => {
    const app = Fastify();
    const listener = toNodeListener(dashboard);
    // Hand the raw request over before Fastify parses its body.
    app.addHook("onRequest", (request, reply, done) => {
      if (request.url === BASE || request.url.startsWith(`${BASE}/`) || request.url.startsWith(`${BASE}?`)) {
        reply.hijack();
        listener(request.raw, reply.raw);
        return;
      }
      done();
    });
    app.get("/", async () => "app");
    await app.listen({ port: 0, host: "127.0.0.1" });
    closers.push(() => app.close());
    const { port } = app.server.address() as AddressInfo;
    await exercise((path, init) => fetch(`http://127.0.0.1:${port}${path}`, init));
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe("app");
  });

  it("Hono", async () => {
    const app = new Hono();
    app.all(BASE, (c) => dashboard(c.req.raw));
    app.all(`${BASE}/*`, (c) => dashboard(c.req.raw));
    app.get("/", (c) => c.text("app"));
    // Hono's own fetch, then through its Node server.
    await exercise(async (path, init) => app.fetch(new Request(`http://hono.test${path}`, init)));
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }) as Server;
    await new Promise<void>((resolve) => (server.listening ? resolve() : server.once("listening", resolve)));
    const client = await over(server);
    closers.push(client.close);
    await exercise(client.fetch);
  });

  it("Next.js route handler (app/admin/jobs/[[...path]]/route.ts)", async () => {
    const { GET, POST } = nextRouteHandlers(dashboard);
    await exercise((path, init) => {
      const request = new Request(`http://next.test${path}`, init);
      return request.method === "POST" ? POST(request) : GET(request);
    });
  });
});
