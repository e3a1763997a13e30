import { describe, expect, it } from "vitest";
import { QueryError } from "../../src/core/index.ts";
import { RuntimeEvents } from "../../src/runtime/events.ts";
import { healthHandler, type LogFields, type SupervisorHealth, summarizeError } from "../../src/runtime/index.ts";
import { LoopMonitor } from "../../src/runtime/loop-monitor.ts";
import { toQueryError } from "../../src/store/index.ts";

/** A driver error wrapped the way drizzle wraps it: the statement and its parameters in the message. */
function wrappedDriverError(code: string): Error {
  const driver = Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code });
  return new Error('Failed query: select "id" from "runledger"."job_queue" where id = $1\nparams: secret-token', {
    cause: driver,
  });
}

function recordingLogger() {
  const lines: { level: string; fields: LogFields; message: string }[] = [];
  const at = (level: string) => (fields: LogFields, message: string) => lines.push({ level, fields, message });
  return { lines, logger: { info: at("info"), warn: at("warn"), error: at("error") } };
}

describe("loop monitor", () => {
  it("backs off exponentially up to the cap and logs one line per state change", () => {
    const { lines, logger } = recordingLogger();
    const events = new RuntimeEvents();
    const states: string[] = [];
    events.on("loop:state", (e) => states.push(`${e.state}:${e.code}`));
    const monitor = new LoopMonitor("worker", { logger, events, backoff: { initialMs: 1000, maxMs: 15_000 } });
    const delays = Array.from({ length: 8 }, () => monitor.failed(toQueryError(wrappedDriverError("ECONNREFUSED"))));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 15_000, 15_000, 15_000, 15_000]);
    expect(monitor.status()).toMatchObject({ state: "failing", consecutiveFailures: 8, retryInMs: 15_000 });
    // A different error is a state change of its own.
    monitor.failed(new QueryError("db.query_failed"));
    monitor.succeeded();
    monitor.succeeded();
    expect(lines.map((l) => `${l.level} ${l.message}`)).toEqual([
      "warn worker: database unreachable (db.connection_failed), retrying in 1 s",
      "warn worker: failing (db.query_failed), retrying in 15 s",
      expect.stringMatching(/^info worker: recovered after \d+(\.\d)? s \(9 failed attempts\)$/),
    ]);
    expect(states).toEqual(["failing:db.connection_failed", "failing:db.query_failed", "recovered:db.query_failed"]);
    expect(monitor.status()).toMatchObject({ state: "running", consecutiveFailures: 0, retryInMs: null });
    for (const line of lines) expect(JSON.stringify(line)).not.toMatch(/select|secret|\$1/);
  });

  it("summarizes errors without SQL, parameters or arbitrary messages", () => {
    expect(summarizeError(wrappedDriverError("ECONNRESET"))).toEqual({
      code: "db.connection_failed",
      message: "Database connection failed.",
    });
    expect(summarizeError(new Error("password=hunter2"))).toEqual({
      code: "runtime.unexpected_error",
      message: "A loop failed with Error.",
    });
  });

  it("answers a probe with 200 when ready and 503 otherwise", async () => {
    let health = { status: "ok", ready: true } as SupervisorHealth;
    const handler = healthHandler({ health: () => health });
    const ok = handler(new Request("http://probe/ready"))!;
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: "ok" });
    health = { status: "degraded", ready: false } as SupervisorHealth;
    expect(handler(new Request("http://probe/ready"))!.status).toBe(503);
  });
});
