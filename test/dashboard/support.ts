import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { type DashboardHandler, toNodeListener } from "../../src/dashboard/index.ts";
import { ROOT } from "../support/processes.ts";

/** Where browser tests save their screenshots (git-ignored). */
export const SCREENSHOTS = join(ROOT, ".screenshots", "dashboard");

/** Debian's Chromium; `.ci/run` installs it when absent. */
export const CHROMIUM = process.env.RUNLEDGER_CHROMIUM ?? "/usr/bin/chromium";

/** A headless Chromium with a fresh profile of its own, removed on close. */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`No Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set RUNLEDGER_CHROMIUM`);
  }
  const profile = mkdtempSync(join(tmpdir(), "runledger-chromium-"));
  mkdirSync(SCREENSHOTS, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A loopback HTTP server routing each path prefix to its fetch handler. */
export async function serveHandlers(
  mounts: Record<string, DashboardHandler>,
): Promise<{ url: string; close(): Promise<void> }> {
  const listeners = Object.entries(mounts).map(([prefix, handler]) => [prefix, toNodeListener(handler)] as const);
  const server = createServer((req, res) => {
    const path = req.url ?? "/";
    const found = listeners.find(
      ([prefix]) => path === prefix || path.startsWith(`${prefix}/`) || path.startsWith(`${prefix}?`),
    );
    if (found === undefined) {
      res.writeHead(404).end();
      return;
    }
    found[1](req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
