import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { WorkflowDagBuilder } from "../../src/core/index.ts";
import {
  ALL_ORGANIZATIONS,
  createDashboard,
  type DashboardAction,
  type DashboardOptions,
  type DashboardTarget,
} from "../../src/dashboard/index.ts";
import {
  enqueueJob,
  enqueueWorkflowRun,
  getJobById,
  getJobDefinition,
  getWorkflowRunById,
  setJobTypeLimits,
} from "../../src/store/index.ts";
import { claimJobs, completeJobFailure } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";
import { ORG_A, ORG_B, type Seeded, seedDashboard } from "./seed.ts";

/*
 * The fetch handler without a browser: mounting paths, authorization per action, read-only mode,
 * CSRF, redirects, escaping and the server-enforced refresh interval.
 */

const { db } = await useTestDatabase();
let seeded: Seeded;

beforeAll(async () => {
  seeded = await seedDashboard(db);
});

const allowAll = () => true;

function dashboard(options: Partial<DashboardOptions> = {}) {
  return createDashboard({
    db,
    basePath: "/admin/jobs",
    authorize: allowAll,
    scope: () => ({ organizationId: ORG_A }),
    ...options,
  });
}

const get = (handler: (r: Request) => Promise<Response>, path: string, init: RequestInit = {}) =>
  handler(new Request(`http://dash.test${path}`, init));

/** A page's CSRF cookie and token, as a browser would hold them. */
async function session(handler: (r: Request) => Promise<Response>, path: string) {
  const page = await get(handler, path);
  expect(page.status).toBe(200);
  const cookie = page.headers.getSetCookie()[0]!.split(";")[0]!;
  const token = /x-csrf-token&quot;:&quot;([^&]+)&quot;/.exec(await page.text())?.[1];
  return { cookie, token };
}

function post(
  handler: (r: Request) => Promise<Response>,
  path: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
) {
  return get(handler, path, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form).toString(),
  });
}

describe("mount path", () => {
  it.each(["/admin/jobs", "/admin/jobs/"])(
    "basePath %s serves the pages with and without a trailing slash",
    async (basePath) => {
      const handler = dashboard({ basePath });
      for (const path of ["/admin/jobs", "/admin/jobs/", "/admin/jobs/jobs", "/admin/jobs/runs"]) {
        const response = await get(handler, path);
        expect(response.status, path).toBe(200);
        const body = await response.text();
        expect(body).toContain('href="/admin/jobs/jobs"');
        expect(body).not.toContain("/admin/jobs//");
      }
      for (const path of ["/", "/admin", "/admin/jobsx", "/admin/jobs/nope"]) {
        expect((await get(handler, path)).status, path).toBe(404);
      }
    },
  );

  it("serves at the root when basePath is / or omitted", async () => {
    for (const basePath of ["/", undefined]) {
      const handler = dashboard({ basePath });
      const response = await get(handler, "/");
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('href="/jobs"');
    }
  });

  it("refuses a basePath that is not an absolute path", () => {
    for (const basePath of ["admin", "/a//b", "/a/../b", "/a?x"]) {
      expect(() => dashboard({ basePath }), basePath).toThrow(/basePath/);
    }
  });

  it("requires authorize", () => {
    expect(() => createDashboard({ db } as unknown as DashboardOptions)).toThrow(/authorize/);
  });
});

describe("authorize", () => {
  it("is asked for reads with the viewer's scope, and a refusal is a 403 with no data", async () => {
    const calls: [DashboardAction, unknown][] = [];
    const handler = dashboard({
      authorize: (_request, action, scope) => {
        calls.push([action, scope]);
        return action !== "read";
      },
    });
    const response = await get(handler, "/admin/jobs/jobs");
    expect(response.status).toBe(403);
    expect(await response.text()).not.toContain("email.send");
    expect(calls).toEqual([["read", { organizationId: ORG_A }]]);
    expect((await get(handler, "/admin/jobs/events")).status).toBe(403);
  });

  it("is asked per action with its target; buttons show only for allowed actions", async () => {
    const calls: [DashboardAction, DashboardTarget | undefined][] = [];
    const handler = dashboard({
      authorize: (_request, action, _scope, target) => {
        calls.push([action, target]);
        return action === "read" || action === "job.cancel";
      },
    });
    const jobId = seeded.emailJobs[0]!;
    const page = await (await get(handler, `/admin/jobs/jobs/${jobId}`)).text();
    expect(page).toContain('data-action="job.cancel"');
    const dead = await (await get(handler, "/admin/jobs/dead-letters")).text();
    expect(dead).not.toContain('data-action="job.requeue"');

    const { cookie, token } = await session(handler, `/admin/jobs/jobs/${jobId}`);
    const refused = await post(
      handler,
      `/admin/jobs/jobs/${seeded.deadJobs[0]}/requeue`,
      { _csrf: token! },
      { cookie },
    );
    expect(refused.status).toBe(403);
    expect((await getJobById(db, seeded.deadJobs[0]!, ALL_ORGANIZATIONS))!.status).toBe("DEAD_LETTERED");
    expect(calls).toContainEqual(["job.requeue", { jobId: seeded.deadJobs[0] }]);
  });

  it("scopes every read: another organization's job is not found", async () => {
    const handler = dashboard();
    expect((await get(handler, `/admin/jobs/jobs/${seeded.bJob}`)).status).toBe(404);
    expect((await get(handler, `/admin/jobs/runs/${seeded.bRun}`)).status).toBe(404);
    const all = dashboard({ scope: () => ALL_ORGANIZATIONS });
    expect((await get(all, `/admin/jobs/jobs/${seeded.bJob}`)).status).toBe(200);
  });

  it("answers 500 and reports it when scope() returns something that is not a scope", async () => {
    const errors: unknown[] = [];
    const handler = dashboard({ scope: () => ({ organizationId: "acme" }), onError: (error) => errors.push(error) });
    const response = await get(handler, "/admin/jobs/");
    expect(response.status).toBe(500);
    expect(await response.text()).not.toContain("acme");
    expect(errors).toHaveLength(1);
  });
});

describe("changes", () => {
  it("cancel with a valid token redirects back with a notice, and the job is canceled", async () => {
    const handler = dashboard();
    const jobId = (await enqueueJob(db, { jobType: "email.send", organizationId: ORG_A })).id;
    const { cookie, token } = await session(handler, `/admin/jobs/jobs/${jobId}`);
    const response = await post(
      handler,
      `/admin/jobs/jobs/${jobId}/cancel`,
      { _csrf: token!, returnTo: `/admin/jobs/jobs/${jobId}?done=x` },
      { cookie },
    );
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe(`/admin/jobs/jobs/${jobId}?done=job.cancel`);
    expect((await getJobById(db, jobId, ALL_ORGANIZATIONS))!).toMatchObject({
      status: "CANCELED",
      statusReason: "canceled in the dashboard",
    });
    const page = await (await get(handler, response.headers.get("location")!, { headers: { cookie } })).text();
    expect(page).toContain("Job canceled.");

    // Again: the store refuses, and the page says why in the catalog's words.
    const again = await post(handler, `/admin/jobs/jobs/${jobId}/cancel`, { _csrf: token! }, { cookie });
    expect(again.headers.get("location")).toBe(`/admin/jobs/jobs/${jobId}?error=job.invalid_state_transition`);
    const explained = await (await get(handler, again.headers.get("location")!)).text();
    expect(explained).toContain("Job is not in a status that allows this operation.");
  });

  it("refuses a change without the token, with another's token, or from another site", async () => {
    const handler = dashboard();
    const other = dashboard({ csrfSecret: "another secret" });
    const jobId = (await enqueueJob(db, { jobType: "email.send", organizationId: ORG_A })).id;
    const path = `/admin/jobs/jobs/${jobId}/cancel`;
    const { cookie, token } = await session(handler, `/admin/jobs/jobs/${jobId}`);
    const forged = await session(other, `/admin/jobs/jobs/${jobId}`);
    const attempts = [
      post(handler, path, {}, { cookie }),
      post(handler, path, { _csrf: token! }),
      post(handler, path, { _csrf: `${token}x` }, { cookie }),
      post(handler, path, { _csrf: forged.token! }, { cookie: forged.cookie }),
      post(handler, path, { _csrf: token! }, { cookie, "sec-fetch-site": "cross-site" }),
    ];
    for (const response of await Promise.all(attempts)) expect(response.status).toBe(403);
    expect((await getJobById(db, jobId, ALL_ORGANIZATIONS))!.status).toBe("PENDING");
    // The header form (htmx sends it) works as well as the field.
    const viaHeader = await post(handler, path, {}, { cookie, "x-csrf-token": token! });
    expect(viaHeader.status).toBe(303);
  });

  it("pauses and resumes a job type for every worker", async () => {
    const handler = dashboard();
    const { cookie, token } = await session(handler, "/admin/jobs/job-types");
    const pause = await post(handler, "/admin/jobs/job-types/thumbnails.render/pause", { _csrf: token! }, { cookie });
    expect(pause.headers.get("location")).toBe("/admin/jobs/job-types?done=job_type.pause");
    expect((await getJobDefinition(db, "thumbnails.render"))!.pausedAt).toBeInstanceOf(Date);
    await setJobTypeLimits(db, {
      jobType: "thumbnails.render",
      maxConcurrency: 3,
      rateLimit: { limit: 10, intervalMs: 1000 },
    });
    const page = await (await get(handler, "/admin/jobs/job-types", { headers: { cookie } })).text();
    expect(page).toContain('data-action="job_type.resume"');
    expect(page).toMatch(/data-field="limits">3 running, 10 per 1(\.0)? ?s</);
    const resume = await post(handler, "/admin/jobs/job-types/thumbnails.render/resume", { _csrf: token! }, { cookie });
    expect(resume.headers.get("location")).toBe("/admin/jobs/job-types?done=job_type.resume");
    expect((await getJobDefinition(db, "thumbnails.render"))!.pausedAt).toBeNull();
    const unknown = await post(handler, "/admin/jobs/job-types/no.such.type/pause", { _csrf: token! }, { cookie });
    expect(unknown.headers.get("location")).toBe("/admin/jobs/job-types?error=job.definition_not_found");
  });

  it("retries a failed run's steps from its page", async () => {
    const handler = dashboard();
    await defineJob(db, "retry.step", { maxAttempts: 1 });
    const run = await enqueueWorkflowRun(
      db,
      WorkflowDagBuilder.new("retry.me", {}).organizationId(ORG_A).job("only", "retry.step", {}).build(),
    );
    const [job] = await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 1, jobTypes: ["retry.step"] });
    const lease = { jobId: job!.id, runNumber: job!.runNumber, attempt: job!.attempt, workerId: "w" };
    await completeJobFailure(db, { lease, kind: "TERMINAL", code: "report.broken", message: "broken" });
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("COMPLETED_WITH_ERRORS");
    const { cookie, token } = await session(handler, `/admin/jobs/runs/${run.id}`);
    const response = await post(handler, `/admin/jobs/runs/${run.id}/retry`, { _csrf: token! }, { cookie });
    expect(response.headers.get("location")).toBe(`/admin/jobs/runs/${run.id}?done=run.retry`);
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("RUNNING");
  });

  it("read-only mode answers 405 to every change and shows no button", async () => {
    const handler = dashboard({ readOnly: true });
    const jobId = seeded.emailJobs[1]!;
    const page = await get(handler, `/admin/jobs/jobs/${jobId}`);
    const html = await page.text();
    expect(html).not.toContain("data-action=");
    expect(html).toContain("read-only");
    const cookie = page.headers.getSetCookie()[0]!.split(";")[0]!;
    const token = /x-csrf-token&quot;:&quot;([^&]+)&quot;/.exec(html)!;
    for (const path of [
      `/admin/jobs/jobs/${jobId}/cancel`,
      `/admin/jobs/runs/${seeded.run}/cancel`,
      "/admin/jobs/nope",
    ]) {
      const response = await post(handler, path, { _csrf: token[1]! }, { cookie });
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")).toBe("GET, HEAD");
    }
    expect((await get(handler, "/admin/jobs/", { method: "DELETE" })).status).toBe(405);
    expect((await getJobById(db, jobId, ALL_ORGANIZATIONS))!.status).toBe("PENDING");
  });

  it("goes back only to a page of the dashboard", async () => {
    const handler = dashboard();
    const jobId = seeded.emailJobs[2]!;
    const { cookie, token } = await session(handler, "/admin/jobs/");
    for (const returnTo of ["//evil.test/x", "https://evil.test/", "/\\evil.test", "/other/app"]) {
      const response = await post(
        handler,
        `/admin/jobs/jobs/${jobId}/requeue`,
        { _csrf: token!, returnTo },
        { cookie },
      );
      expect(response.status).toBe(303);
      expect(response.headers.get("location"), returnTo).toMatch(/^\/admin\/jobs\/jobs\//);
    }
  });

  it("refuses forms in another encoding or over 64 KiB", async () => {
    const handler = dashboard();
    const { cookie, token } = await session(handler, "/admin/jobs/");
    const path = `/admin/jobs/jobs/${seeded.emailJobs[3]}/cancel`;
    const json = await get(handler, path, {
      method: "POST",
      headers: { cookie, "content-type": "application/json", "x-csrf-token": token! },
      body: "{}",
    });
    expect(json.status).toBe(415);
    const big = await post(handler, path, { _csrf: token!, reason: "x".repeat(70_000) }, { cookie });
    expect(big.status).toBe(413);
    expect((await getJobById(db, seeded.emailJobs[3]!, ALL_ORGANIZATIONS))!.status).toBe("PENDING");
  });
});

describe("pages", () => {
  it("escapes what the database holds and passes JSON through redact", async () => {
    const nasty = `x<script>alert(1)</script>`;
    await defineJob(db, nasty);
    const jobId = (
      await enqueueJob(db, {
        jobType: nasty,
        organizationId: ORG_A,
        payload: { html: "</pre><img src=x onerror=alert(2)>", card: "4111 1111 1111 1111" },
      })
    ).id;
    const handler = dashboard({
      redact: (value, context) => (context.kind === "job.payload" ? { ...(value as object), card: "••••" } : value),
    });
    for (const path of [`/admin/jobs/jobs/${jobId}`, "/admin/jobs/jobs", "/admin/jobs/", "/admin/jobs/job-types"]) {
      const body = await (await get(handler, path)).text();
      expect(body, path).not.toContain("<script>alert");
      expect(body, path).not.toContain("<img src=x");
      expect(body, path).not.toContain("4111 1111");
    }
    const detail = await (await get(handler, `/admin/jobs/jobs/${jobId}`)).text();
    expect(detail).toContain("x&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(detail).toContain("••••");
  });

  it("answers HEAD without a body and sets security headers", async () => {
    const response = await get(dashboard(), "/admin/jobs/", { method: "HEAD" });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("");
    expect(response.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(response.headers.get("x-frame-options")).toBe("DENY");
  });

  it("finds a job by idempotency key and redirects to the single match", async () => {
    const response = await get(dashboard(), "/admin/jobs/search?q=report%3A2026-12");
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe(`/admin/jobs/jobs/${seeded.keyedReport}`);
    const none = await (await get(dashboard(), `/admin/jobs/search?q=${seeded.bJob}`)).text();
    expect(none).toContain("Nothing has this id");
  });

  it("lists running jobs from the claim order and sends dead letters to their own page", async () => {
    const running = await (await get(dashboard(), "/admin/jobs/jobs?status=LEASED&type=thumb")).text();
    expect(running.match(/data-status="LEASED"/g)).toHaveLength(2);
    expect(
      (await (await get(dashboard(), "/admin/jobs/jobs?status=LEASED&type=email")).text()).match(
        /data-status="LEASED"/g,
      ),
    ).toBeNull();
    const dead = await get(dashboard(), "/admin/jobs/jobs?status=DEAD_LETTERED");
    expect(dead.status).toBe(303);
    expect(dead.headers.get("location")).toBe("/admin/jobs/dead-letters");
  });

  it("rejects a malformed page cursor or status with 400", async () => {
    expect((await get(dashboard(), "/admin/jobs/jobs?after=nonsense")).status).toBe(400);
    expect((await get(dashboard(), "/admin/jobs/jobs?status=NOPE")).status).toBe(400);
  });

  it("reuses overview figures for the minimum interval, however often they are asked for", async () => {
    const handler = dashboard({ live: { minIntervalMs: 1500 } });
    const pending = async () =>
      /data-count="PENDING">[\s\S]*?<a [^>]*>([\d,+]+)</.exec(await (await get(handler, "/admin/jobs/")).text())![1];
    const before = await pending();
    await enqueueJob(db, { jobType: "email.send", organizationId: ORG_A });
    expect(await pending()).toBe(before);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    expect(Number(await pending())).toBe(Number(before) + 1);
  });
});

describe("live updates", () => {
  const opened: ReadableStreamDefaultReader<Uint8Array>[] = [];
  afterEach(async () => {
    for (const reader of opened.splice(0)) await reader.cancel();
  });

  /** Read server-sent events from a stream as they come. */
  async function events(handler: (r: Request) => Promise<Response>) {
    const controller = new AbortController();
    const response = await get(handler, "/admin/jobs/events", { signal: controller.signal });
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const reader = response.body!.getReader();
    opened.push(reader);
    const seen: { event: string; at: number }[] = [];
    let buffer = "";
    (async () => {
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const event = /^event: (.+)$/m.exec(buffer.slice(0, end))?.[1];
          if (event !== undefined) seen.push({ event, at: Date.now() });
          buffer = buffer.slice(end + 2);
        }
      }
    })();
    return seen;
  }

  const until = async (check: () => boolean, ms = 5000) => {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error("timed out");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  it("sends refresh when the database notifies, at most once per minimum interval", async () => {
    const handler = dashboard({ live: { minIntervalMs: 1000, pollIntervalMs: 60_000 } });
    const seen = await events(handler);
    await until(() => seen.some((e) => e.event === "ready"));
    // The subscription's first refresh (sent when LISTEN starts) comes first; then a burst.
    await until(() => seen.some((e) => e.event === "refresh"));
    const start = seen.filter((e) => e.event === "refresh").length;
    for (let i = 0; i < 10; i++) await enqueueJob(db, { jobType: "email.send", organizationId: ORG_B });
    await until(() => seen.filter((e) => e.event === "refresh").length > start);
    await new Promise((resolve) => setTimeout(resolve, 1300));
    const refreshes = seen.filter((e) => e.event === "refresh");
    expect(refreshes.length - start).toBeLessThanOrEqual(2);
    for (let i = 1; i < refreshes.length; i++) {
      expect(refreshes[i]!.at - refreshes[i - 1]!.at).toBeGreaterThanOrEqual(950);
    }
  });

  it("refreshes on the poll interval when nothing notifies", async () => {
    const handler = dashboard({ live: { minIntervalMs: 1000, pollIntervalMs: 1200 } });
    const seen = await events(handler);
    await until(() => seen.filter((e) => e.event === "refresh").length >= 3, 6000);
  });
});

describe("requeue dead letters by filter", () => {
  it("confirms with the dry run's count, then requeues the viewer's dead letters of that type", async () => {
    const calls: [DashboardAction, DashboardTarget | undefined][] = [];
    const handler = dashboard({
      authorize: (_request, action, _scope, target) => {
        calls.push([action, target]);
        return true;
      },
    });
    const list = await (await get(handler, "/admin/jobs/dead-letters?type=reports.build")).text();
    expect(list).toContain('href="/admin/jobs/dead-letters/requeue?type=reports.build"');

    const confirm = await get(handler, "/admin/jobs/dead-letters/requeue?type=reports.build");
    expect(confirm.status).toBe(200);
    const html = await confirm.text();
    expect(html).toContain('data-dry-run="2"');
    expect(html).toContain("Requeue 2 jobs");
    expect(html).toContain('action="/admin/jobs/dead-letters/requeue/reports.build"');
    for (const id of seeded.deadJobs)
      expect((await getJobById(db, id, ALL_ORGANIZATIONS))!.status).toBe("DEAD_LETTERED");

    const { cookie, token } = await session(handler, "/admin/jobs/dead-letters/requeue?type=reports.build");
    const done = await post(
      handler,
      "/admin/jobs/dead-letters/requeue/reports.build",
      { _csrf: token!, reason: "source restored" },
      { cookie },
    );
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toBe("/admin/jobs/dead-letters?type=reports.build&done=dead_letters.requeue");
    expect(calls).toContainEqual(["dead_letters.requeue", { jobType: "reports.build" }]);
    for (const id of seeded.deadJobs) {
      expect(await getJobById(db, id, ALL_ORGANIZATIONS)).toMatchObject({
        status: "PENDING",
        runNumber: 2,
        statusReason: "source restored",
      });
    }
    const after = await (await get(handler, "/admin/jobs/dead-letters/requeue?type=reports.build")).text();
    expect(after).toContain('data-dry-run="0"');
  });

  it("is refused without the permission, and in read-only mode", async () => {
    const handler = dashboard({ authorize: (_request, action) => action !== "dead_letters.requeue" });
    expect((await get(handler, "/admin/jobs/dead-letters/requeue")).status).toBe(403);
    const { cookie, token } = await session(handler, "/admin/jobs/dead-letters");
    expect((await post(handler, "/admin/jobs/dead-letters/requeue", { _csrf: token! }, { cookie })).status).toBe(403);
    const readOnly = dashboard({ readOnly: true });
    expect((await post(readOnly, "/admin/jobs/dead-letters/requeue", {})).status).toBe(405);
  });
});
