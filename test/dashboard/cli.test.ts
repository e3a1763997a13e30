import type { ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { enqueueJob } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";
import { finished, startTs } from "../support/processes.ts";

const { db, url } = await useTestDatabase();
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

/** Start `runledger dashboard …` and wait for the address it prints. */
async function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; address: string }> {
  const child = startTs("src/cli.ts", ["dashboard", "--port", "0", ...args], { DATABASE_URL: url, ...env });
  children.push(child);
  let output = "";
  const address = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (chunk) => {
      output += chunk;
      const found = / at (http:\/\/\S+)/.exec(output);
      if (found) resolve(found[1]!);
    });
    child.once("exit", (code) => reject(new Error(`exited ${code} before serving: ${output}`)));
  });
  return { child, address };
}

describe("runledger dashboard", () => {
  it("serves the dashboard for DATABASE_URL until SIGTERM", async () => {
    await defineJob(db, "cli.visible");
    await enqueueJob(db, { jobType: "cli.visible" });
    const { child, address } = await start(["--base-path", "/ops"]);
    expect(address).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ops\/$/);
    const page = await fetch(`${address}jobs`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("cli.visible");
    const exit = finished(child);
    child.kill("SIGTERM");
    expect((await exit).code).toBe(0);
  });

  it("refuses changes with --read-only", async () => {
    const { address } = await start(["--read-only"]);
    const response = await fetch(`${address}jobs/00000000-0000-7000-8000-000000000000/cancel`, { method: "POST" });
    expect(response.status).toBe(405);
  });

  it("asks for the password when RUNLEDGER_DASHBOARD_PASSWORD is set", async () => {
    const { address } = await start([], { RUNLEDGER_DASHBOARD_PASSWORD: "s3cret" });
    expect((await fetch(address)).status).toBe(401);
    const auth = `Basic ${Buffer.from("ops:s3cret").toString("base64")}`;
    expect((await fetch(address, { headers: { authorization: auth } })).status).toBe(200);
  });

  it("will not expose a writable dashboard beyond loopback without a password", async () => {
    const result = await finished(startTs("src/cli.ts", ["dashboard", "--host", "0.0.0.0"], { DATABASE_URL: url }));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("without a password");
  });
});
