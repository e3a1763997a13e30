// A handle opens its clients' sockets itself (src/store/db.ts, `HandleSockets`); TLS goes over
// them as it did over the driver's own: asked for by the URL, negotiated, and closed with the handle.
import { sql } from "drizzle-orm";
import { afterAll, expect, it } from "vitest";
import { createDb, queryRows, type RunledgerDb } from "../../src/store/index.ts";
import { type Cluster, startCluster } from "../support/servers.ts";

const cluster: Cluster = await startCluster({ tls: true });
afterAll(() => cluster.destroy());

const ssl = (db: RunledgerDb) =>
  queryRows<{ ssl: boolean }>(db, sql`select ssl from pg_stat_ssl where pid = pg_backend_pid()`);

it.each([
  ["127.0.0.1", "require"],
  ["localhost", "require"],
  ["localhost", "prefer"],
])("connects over TLS to %s with sslmode=%s, on every connection of the pool", async (host, mode) => {
  const url = new URL(cluster.url("postgres"));
  url.hostname = host;
  url.searchParams.set("sslmode", mode);
  const db = createDb(url.toString(), { max: 3 });
  try {
    const rows = await Promise.all([ssl(db), ssl(db), ssl(db)]);
    expect(rows.map(([row]) => row?.ssl)).toEqual([true, true, true]);
  } finally {
    await db.$runledger.close();
  }
});

it("connects without TLS when the URL does not ask for it", async () => {
  const db = createDb(cluster.url("postgres"), { max: 1 });
  try {
    expect(await ssl(db)).toEqual([{ ssl: false }]);
  } finally {
    await db.$runledger.close();
  }
});
