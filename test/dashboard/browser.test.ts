import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, createDashboard, type DashboardScope } from "../../src/dashboard/index.ts";
import { cancelJob, completeExternalWorkflowStep, getJobById } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { A_PENDING, ORG_A, ORG_B, type Seeded, seedDashboard } from "./seed.ts";
import { launchChromium, SCREENSHOTS, serveHandlers } from "./support.ts";

/*
 * The dashboard in a real browser (Debian's headless Chromium): organization A's operator at /a,
 * the same in read-only mode at /ro, an operator of every organization at /all.
 */

const { db } = await useTestDatabase({ max: 6 });

let seeded: Seeded;
let server: Awaited<ReturnType<typeof serveHandlers>>;
let browser: Awaited<ReturnType<typeof launchChromium>>;

const scopeA: DashboardScope = { organizationId: ORG_A };
const dashboard = (basePath: string, scope: DashboardScope, readOnly = false, pollIntervalMs = 60_000) =>
  createDashboard({
    db,
    basePath,
    readOnly,
    scope: () => scope,
    authorize: () => true,
    redact: (value, context) =>
      context.kind === "job.payload" && value !== null && typeof value === "object" && "apiToken" in value
        ? { ...value, apiToken: "[redacted]" }
        : value,
    live: { minIntervalMs: 1000, pollIntervalMs },
  });

beforeAll(async () => {
  seeded = await seedDashboard(db);
  server = await serveHandlers({
    "/a": dashboard("/a", scopeA),
    "/ro": dashboard("/ro/", scopeA, true),
    "/all": dashboard("/all", ALL_ORGANIZATIONS),
    "/poll": dashboard("/poll", scopeA, false, 1000),
  });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function open(path: string): Promise<Page> {
  const page = await browser.context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  const response = await page.goto(`${server.url}${path}`);
  expect(response?.status()).toBe(200);
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

describe("dashboard in Chromium", () => {
  it("shows the seeded counts on the overview", async () => {
    const page = await open("/a/");
    await expect.poll(() => page.getAttribute("html", "data-live")).toBe("sse");
    const value = (status: string) => page.locator(`[data-count="${status}"] .value`).textContent();
    expect(await value("PENDING")).toBe(String(A_PENDING));
    expect(await value("LEASED")).toBe("2");
    expect(await value("DEAD_LETTERED")).toBe("2");
    expect(await page.locator('tr[data-type="email.send"] td[data-status="PENDING"]').textContent()).toBe("12");
    expect(await page.locator('tr[data-type="reports.build"] td[data-status="DEAD_LETTERED"]').textContent()).toBe("2");
    expect(await page.locator('[data-table="workers"]').textContent()).toContain("worker-a1");
    await shot(page, "overview");
    await page.close();
  });

  it("narrows the job list with a filter", async () => {
    const page = await open("/a/jobs");
    const rows = page.locator('[data-table="jobs"] tbody tr');
    expect(await rows.count()).toBe(16 + 5 + 2 + 1); // every job of A, the crawl step's included
    await page.selectOption('select[name="status"]', "LEASED");
    await page.click('form.filters button[type="submit"]');
    await expect.poll(() => page.url()).toContain("status=LEASED");
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-status")))).toEqual([
      "LEASED",
      "LEASED",
    ]);
    // Dead letters have a page of their own: the filter leads there.
    await page.selectOption('select[name="status"]', "DEAD_LETTERED");
    await page.click('form.filters button[type="submit"]');
    await expect.poll(() => page.url()).toMatch(/\/a\/dead-letters$/);
    const dead = page.locator('[data-table="dead-letters"] tbody tr');
    expect(await dead.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-job")).sort())).toEqual(
      [...seeded.deadJobs].sort(),
    );
    await page.goto(`${server.url}/a/jobs`);
    await page.fill('input[name="type"]', "email");
    await page.selectOption('select[name="status"]', "PENDING");
    await page.click('form.filters button[type="submit"]');
    await expect.poll(() => rows.count()).toBe(12);
    expect(new Set(await page.locator('[data-table="jobs"] tbody td:nth-child(2)').allInnerTexts())).toEqual(
      new Set(["email.send"]),
    );
    await shot(page, "jobs-filtered");
    await page.close();
  });

  it("draws the run's DAG with each node's status, and advances it live when the gate is approved", async () => {
    const page = await open(`/a/runs/${seeded.run}`);
    await expect.poll(() => page.getAttribute("html", "data-live")).toBe("sse");
    const status = (step: string) => page.getAttribute(`svg.dag [data-step="${step}"]`, "data-status");
    expect(await status("crawl")).toBe("SUCCEEDED");
    expect(await status("approve")).toBe("WAITING_FOR_EXTERNAL");
    expect(await status("persist")).toBe("BLOCKED");
    expect(await status("cleanup")).toBe("BLOCKED");
    expect(await page.getAttribute('svg.dag [data-edge="approve->cleanup"]', "data-kind")).toBe("on-terminal");
    expect(await page.getAttribute('svg.dag [data-edge="approve->persist"]', "data-kind")).toBe("on-success");
    await shot(page, "run-waiting");

    // Approved elsewhere (an API call): the open page follows without a reload.
    await page.evaluate(() => {
      (globalThis as unknown as { marker: string }).marker = "same document";
    });
    await completeExternalWorkflowStep(db, {
      workflowRunId: seeded.run,
      scope: { organizationId: ORG_A },
      stepKey: "approve",
      terminalStatus: "SUCCEEDED",
      statusReason: "approved by the test",
    });
    await expect.poll(() => status("approve"), { timeout: 10_000 }).toBe("SUCCEEDED");
    await expect.poll(() => status("persist")).toBe("ENQUEUED");
    expect(await status("cleanup")).toBe("ENQUEUED");
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: string }).marker)).toBe("same document");
    await shot(page, "run-approved");
    await page.close();
  });

  it("polls when Server-Sent Events are unavailable, and stops while the tab is hidden", async () => {
    const jobId = seeded.emailJobs.at(-4)!;
    const page = await browser.context.newPage();
    await page.addInitScript(() => {
      delete (globalThis as { EventSource?: unknown }).EventSource;
    });
    let refreshes = 0;
    page.on("request", (request) => {
      if (request.headers()["hx-request"] === "true") refreshes++;
    });
    await page.goto(`${server.url}/poll/jobs/${jobId}`);
    await expect.poll(() => page.getAttribute("html", "data-live")).toBe("polling");
    await expect.poll(() => refreshes, { timeout: 5000 }).toBeGreaterThan(0);

    await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: { dispatchEvent(e: unknown): void } }).document;
      Object.defineProperty(doc, "hidden", { configurable: true, get: () => true });
      doc.dispatchEvent(new Event("visibilitychange"));
    });
    expect(await page.getAttribute("html", "data-live")).toBe("hidden");
    const whileHidden = refreshes;
    await cancelJob(db, { jobId, scope: { organizationId: ORG_A }, reason: "canceled while the tab was hidden" });
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(refreshes).toBe(whileHidden);
    expect(await page.locator('[data-field="status"]').textContent()).toContain("PENDING");

    await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: { dispatchEvent(e: unknown): void } }).document;
      Object.defineProperty(doc, "hidden", { configurable: true, get: () => false });
      doc.dispatchEvent(new Event("visibilitychange"));
    });
    await expect.poll(() => page.locator('[data-field="status"]').textContent()).toContain("CANCELED");
    await page.close();
  });

  it("cancels a job from its page with the CSRF token the page carries", async () => {
    const jobId = seeded.emailJobs.at(-1)!;
    const page = await open(`/a/jobs/${jobId}`);
    await page.click('button[data-action="job.cancel"]');
    await expect.poll(() => page.locator(".notice.ok").count()).toBe(1);
    expect(await page.locator('[data-field="status"]').textContent()).toContain("CANCELED");
    expect((await getJobById(db, jobId, ALL_ORGANIZATIONS))!.status).toBe("CANCELED");
    await page.close();
  });

  it("refuses a change without the CSRF token", async () => {
    const jobId = seeded.emailJobs.at(-2)!;
    const page = await open(`/a/jobs/${jobId}`);
    const status = await page.evaluate(async (url) => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "returnTo=%2Fa%2F",
      });
      return response.status;
    }, `${server.url}/a/jobs/${jobId}/cancel`);
    expect(status).toBe(403);
    expect((await getJobById(db, jobId, ALL_ORGANIZATIONS))!.status).toBe("PENDING");
    await page.close();
  });

  it("hides and refuses every change in read-only mode", async () => {
    const jobId = seeded.emailJobs.at(-3)!;
    const page = await open(`/ro/jobs/${jobId}`);
    expect(await page.locator("[data-action]").count()).toBe(0);
    expect(await page.locator(".badge.readonly").count()).toBe(1);
    const run = await open(`/ro/runs/${seeded.run}`);
    expect(await run.locator("[data-action]").count()).toBe(0);
    // A forged form with a valid token (taken from the read-write mount) is still refused.
    const token = JSON.parse((await page.getAttribute("body", "hx-headers"))!)["x-csrf-token"] as string;
    const status = await page.evaluate(
      async ({ url, token }) =>
        (
          await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: `_csrf=${encodeURIComponent(token)}`,
          })
        ).status,
      { url: `${server.url}/ro/jobs/${jobId}/cancel`, token },
    );
    expect(status).toBe(405);
    expect((await getJobById(db, jobId, ALL_ORGANIZATIONS))!.status).toBe("PENDING");
    await shot(run, "read-only-run");
    await page.close();
    await run.close();
  });

  it("never shows organization A's operator a row of organization B", async () => {
    const pages = ["/a/", "/a/jobs", "/a/dead-letters", "/a/runs", "/a/schedules", "/a/job-types"];
    for (const path of pages) {
      const page = await open(path);
      const text = await page.content();
      for (const secret of [ORG_B, seeded.bJob, seeded.bRun, "b.private-flow", "b-nightly"]) {
        expect(text, `${path} shows ${secret}`).not.toContain(secret);
      }
      expect(await page.locator('[data-table] tr[data-type="secret.b-only"] td.num').allInnerTexts()).toEqual(
        path === "/a/job-types" ? ["0", "0", "0", "1", "8", "15 min", "100"] : [],
      );
      await page.close();
    }
    const page = await browser.context.newPage();
    for (const path of [`/a/jobs/${seeded.bJob}`, `/a/runs/${seeded.bRun}`]) {
      expect((await page.goto(`${server.url}${path}`))?.status(), path).toBe(404);
    }
    // Searching B's job id (the query stays in the search box) finds nothing.
    await page.goto(`${server.url}/a/search?q=${seeded.bJob}`);
    const results = await page.locator("#live").innerHTML();
    expect(results).toContain("Nothing has this id");
    expect(results).not.toContain(seeded.bJob.slice(-12));
    // The operator of every organization sees B's rows.
    await page.goto(`${server.url}/all/jobs?type=secret`);
    expect(await page.locator('[data-table="jobs"] tbody tr').count()).toBe(3);
    await page.close();
  });

  it("redacts payloads through the hook", async () => {
    const page = await open(`/a/jobs/${seeded.keyedReport}`);
    const payload = await page.locator("pre.json").first().textContent();
    expect(payload).toContain("[redacted]");
    expect(payload).not.toContain("tok_live_secret");
    await page.close();
  });
});
