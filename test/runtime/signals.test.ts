// shutdownOnSignals under the tsx CLI, as `npx tsx worker.ts` runs a worker: a terminal's Ctrl-C
// goes to the whole foreground process group, tsx and the worker both, and tsx relays signals on
// top, so one keypress can arrive twice. Two SIGINTs 30 ms apart must shorten the shutdown, never
// kill a job mid-way. (Signals sent to the tsx process alone are not tested: when its child does
// not acknowledge a relayed signal within 30 ms, tsx SIGKILLs it, which no program can prevent.)
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, WORKER_FAILURE_CODES } from "../../src/core/index.ts";
import { enqueueJob, getJobById } from "../../src/store/index.ts";
import { reapExpiredLeases } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { finished, ROOT } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const { db, url } = await useTestDatabase({ max: 2 });

/** The worker fixture under the tsx CLI, in a process group of its own (like a terminal's foreground job). */
function startUnderTsx(mode: "helper" | "once", workMs: number): { child: ChildProcess; stdout: () => string } {
  const child = spawn(
    join(ROOT, "node_modules/.bin/tsx"),
    ["test/fixtures/signal-worker.ts", url, mode, String(workMs)],
    { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  let text = "";
  child.stdout?.on("data", (chunk) => {
    text += chunk;
  });
  return { child, stdout: () => text };
}

/** Start the worker, give it a job, and send its process group two SIGINTs 30 ms apart once the job runs. */
async function interruptTwice(mode: "helper" | "once", workMs = 1000) {
  const { child, stdout } = startUnderTsx(mode, workMs);
  const exit = finished(child);
  await waitFor(() => stdout().includes("ready"), { timeoutMs: 20_000, what: "the worker to start" });
  const { id } = await enqueueJob(db, { jobType: "signals.work" });
  await waitFor(() => stdout().includes(`started ${id}`), { what: "the job to start" });
  process.kill(-child.pid!, "SIGINT");
  await sleep(30);
  process.kill(-child.pid!, "SIGINT");
  const result = await exit;
  return { id, result, output: `${result.stdout}${result.stderr}` };
}

describe("shutdownOnSignals under tsx", () => {
  it("two SIGINTs 30 ms apart let the running job finish, then the worker exits 0", async () => {
    const { id, result, output } = await interruptTwice("helper");
    expect(result.code, output).toBe(0);
    expect(result.stdout).toContain(`finished ${id}`);
    expect(result.stdout).toContain("SIGINT received, shutting down (running jobs get 30 s;");
    expect(result.stdout).toContain("SIGINT received again: running jobs get at most 5 s more");
    expect(result.stdout).toMatch(/stopped \(abandoned: 0\) \d+ ms after the first signal/);
    expect((await getJobById(db, id, ALL_ORGANIZATIONS))?.status).toBe("SUCCEEDED");
  }, 40_000);

  it("the second signal cuts the deadline: a job longer than it is abandoned, then recovered by the reaper", async () => {
    const { id, result, output } = await interruptTwice("helper", 9_000);
    expect(result.code, output).toBe(0);
    // Stopped at the 5 s deadline, not the first signal's 30 s, and before the 9 s job was done
    // (its handler ignores its abort signal, so it runs on to its end before the process exits).
    const stopped = /stopped \(abandoned: 1\) (\d+) ms after the first signal/.exec(result.stdout);
    expect(stopped, output).not.toBeNull();
    expect(Number(stopped![1])).toBeGreaterThanOrEqual(4_900);
    expect(Number(stopped![1])).toBeLessThan(8_000);
    const finishedAt = result.stdout.indexOf(`finished ${id}`);
    expect(finishedAt === -1 || finishedAt > stopped!.index, output).toBe(true);
    // Nothing was written for the abandoned attempt: the job stays leased until its lease runs
    // out (here: made to run out now), and then the reaper retries it.
    expect((await getJobById(db, id, ALL_ORGANIZATIONS))?.status).toBe("LEASED");
    await db.execute(
      sql`update runledger.job_queue set lease_expires_at = now() - interval '1 second' where id = ${id}`,
    );
    expect((await reapExpiredLeases(db, { limit: 10, retryDelayMs: 1000 })).retried).toBe(1);
    const job = await getJobById(db, id, ALL_ORGANIZATIONS);
    expect(job?.status).toBe("PENDING");
    expect(job?.lastErrorCode).toBe(WORKER_FAILURE_CODES.leaseExpired);
  }, 40_000);

  it("process.once listeners, as the README used to show, let the second SIGINT kill the job mid-way", async () => {
    const { id, result } = await interruptTwice("once");
    expect(result.code).not.toBe(0);
    expect(result.stdout).not.toContain(`finished ${id}`);
    expect((await getJobById(db, id, ALL_ORGANIZATIONS))?.status).toBe("LEASED");
  }, 40_000);
});
