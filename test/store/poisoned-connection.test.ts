import type postgres from "postgres";
import { afterEach, describe, expect, it } from "vitest";
import { startupParameters } from "../../src/store/db.ts";
import { useTestDatabase } from "../support/db.ts";
import { clientOnOwnSockets } from "../support/owned-sockets.ts";

// Two pooled connections close in the same turn (their backends were terminated together); a
// statement issued as the first one closes lands on the second, which closes with that statement's
// write still pending. postgres.js 3.4.9 then keeps a dead write timer on the second connection
// object, and its next startup message is never sent (see `startupParameters` in src/store/db.ts).
// The sockets are the test's own, so both close at exactly the point that matters.

const { url } = await useTestDatabase();
const clients: postgres.Sql[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.end({ timeout: 1 })));
});

/** A two-connection client on the test's sockets; `state.onClose` runs inside the first close. */
function client(connection: Record<string, string>) {
  const state: { onClose?: () => void } = {};
  const { sql, sockets } = clientOnOwnSockets(url, {
    max: 2,
    connect_timeout: 3,
    connection,
    onclose: () => {
      const run = state.onClose;
      state.onClose = undefined;
      run?.();
    },
  });
  clients.push(sql);
  return { sql, sockets, state };
}

/** Close both connections in one turn, a statement sent from inside the first close; then use both again. */
async function closeTogetherThenQuery(connection: Record<string, string>): Promise<string[]> {
  const { sql, sockets, state } = client(connection);
  await Promise.all([sql`select pg_sleep(0.05)`, sql`select pg_sleep(0.05)`]);
  expect(sockets).toHaveLength(2);
  const caught: Promise<unknown>[] = [];
  state.onClose = () => caught.push(sql`select 1`.catch((error) => error.code));
  for (const socket of [...sockets]) socket.destroy();
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(await Promise.all(caught)).toEqual(["CONNECTION_CLOSED"]);
  const after = await Promise.allSettled([sql`select 2`, sql`select 3`, sql`select 4`]);
  return after.map((r) => (r.status === "fulfilled" ? "ok" : String((r.reason as { code?: string }).code)));
}

describe("a connection closed with a write pending", () => {
  it("is usable again on the next statement with runledger's startup parameters", async () => {
    expect(await closeTogetherThenQuery(startupParameters("runledger-test", false))).toEqual(["ok", "ok", "ok"]);
  });

  // The driver's defect itself: when this fails, postgres.js no longer poisons the connection and
  // the padding in startupParameters can go.
  it("times out at its next connect without them (postgres.js 3.4.9)", async () => {
    expect(await closeTogetherThenQuery({ application_name: "runledger-test" })).toContain("CONNECT_TIMEOUT");
  });
});
