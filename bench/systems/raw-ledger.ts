// Raw SQL with a ledger: how fast a queue that keeps every job's row can be on this machine, the
// ceiling for a redesign of runledger's claim and completion (issue #15). Each job is a row of
// `bench_ledger`, about as wide as runledger's job row (fillfactor 50, indexed by primary key and
// creation time only), that is never deleted: the claim and the completion update it in place, and
// no index names a column they change, so both updates can be HOT. The claim takes jobs from a
// narrow table of runnable rows, in one of three shapes:
// - `leased` (system `rawledger`): the runnable row stays while the job runs and holds its lease
//   deadline, indexed (a reaper finds expired leases through it) and left out of the claim index,
//   so the claim's update of it is not HOT: graphile-worker's claim plus a HOT update of the ledger
//   row. The completion deletes the runnable row and updates the ledger row.
// - `hot` (system `rawledger-hot`): the same, but the lease deadline is indexed nowhere, so the
//   claim's update of the runnable row is HOT too, and the claim skips leased rows on the heap. A
//   reaper would scan the runnable table, which holds only runnable and running jobs.
// - `minimal` (system `rawledger-min`): the claim deletes the runnable row. Nothing could find an
//   expired lease: a lower bound for any design, not one a job system could ship.
// None has fences beyond the status and worker, events, retries, flow control or telemetry; the
// worker is the raw one (raw.ts). Ids are bigserial, not uuids.
import postgres from "postgres";
import type { BenchSystem, SystemName } from "../system.ts";
import { notifyOnInsert, type RawRow, rawWorkerMethods } from "./raw.ts";

export type LedgerShape = "leased" | "hot" | "minimal";

const LEASE = "interval '60 seconds'";

/**
 * What differs between the shapes: whether the claim deletes the runnable row (else it leases it,
 * and the completion deletes it), and the runnable table's indexes.
 */
const SHAPES: Record<LedgerShape, { name: SystemName; deletesAtClaim: boolean; runnableDdl: string }> = {
  leased: {
    name: "rawledger",
    deletesAtClaim: false,
    runnableDdl: `create index if not exists bench_runnable_claim on bench_runnable (priority desc, run_at, id)
        where lease_expires_at is null;
      create index if not exists bench_runnable_lease on bench_runnable (lease_expires_at)
        where lease_expires_at is not null;`,
  },
  hot: {
    name: "rawledger-hot",
    deletesAtClaim: false,
    runnableDdl: `alter table bench_runnable set (fillfactor = 50);
      create index if not exists bench_runnable_claim on bench_runnable (priority desc, run_at, id);`,
  },
  minimal: {
    name: "rawledger-min",
    deletesAtClaim: true,
    runnableDdl: "create index if not exists bench_runnable_claim on bench_runnable (priority desc, run_at, id);",
  },
};

export function rawLedgerSystem(url: string, shape: LedgerShape): BenchSystem {
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  const { name, deletesAtClaim, runnableDdl } = SHAPES[shape];
  const take = deletesAtClaim
    ? "delete from bench_runnable"
    : `update bench_runnable set lease_expires_at = now() + ${LEASE}`;
  const claimSql = `with taken as (${take} where id in (
        select id from bench_runnable where ${deletesAtClaim ? "" : "lease_expires_at is null and "}run_at <= now()
        order by priority desc, run_at, id limit $1 for update skip locked) returning id)
    update bench_ledger j set status = 'LEASED', attempt = j.attempt + 1, worker_id = 'w1',
      lease_expires_at = now() + ${LEASE}, last_heartbeat_at = now(), started_at = coalesce(j.started_at, now()),
      stage = 'running', leased_at = now(), lease_seconds = 60, lease_event_id = nextval('bench_event_ids'),
      updated_at = now()
    where j.id = any(array(select id from taken)) returning j.id, j.payload`;
  const finish = `update bench_ledger j set status = 'SUCCEEDED', lease_expires_at = null, last_heartbeat_at = null,
      finished_at = now(), stage = 'completed', finish_event_id = nextval('bench_event_ids'), updated_at = now()
    where j.id = any($1::bigint[]) and j.status = 'LEASED' and j.worker_id = 'w1'`;
  const completeSql = deletesAtClaim
    ? finish
    : `with gone as (delete from bench_runnable where id = any($1::bigint[])) ${finish}`;
  const enqueue = (values: string) => `with made as (insert into bench_ledger (payload) ${values} returning id)
    insert into bench_runnable (id) select id from made`;
  return {
    name,
    pendingQuery: "select count(*)::int as n from bench_ledger where status <> 'SUCCEEDED'",
    async setup() {
      await sql.unsafe(`
        create sequence if not exists bench_event_ids;
        create table if not exists bench_ledger (id bigserial primary key, job_type text not null default 'bench.noop',
          organization_id uuid, payload jsonb not null, status text not null default 'PENDING',
          priority int not null default 0, run_number int not null default 1, attempt int not null default 0,
          max_attempts int not null default 3, timeout_seconds int not null default 60,
          next_run_at timestamptz not null default now(), lease_expires_at timestamptz, last_heartbeat_at timestamptz,
          worker_id text, started_at timestamptz, finished_at timestamptz, stage text not null default 'queued',
          leased_at timestamptz, lease_seconds int, lease_event_id bigint, finish_event_id bigint,
          enqueue_event_id bigint default nextval('bench_event_ids'), created_at timestamptz not null default now(),
          updated_at timestamptz not null default now()) with (fillfactor = 50);
        create index if not exists bench_ledger_created on bench_ledger (created_at, id);
        create table if not exists bench_runnable (id bigint primary key, priority int not null default 0,
          run_at timestamptz not null default now(), lease_expires_at timestamptz);
        ${runnableDdl}
        ${notifyOnInsert("bench_runnable")}
      `);
    },
    async enqueueBatch(seqs) {
      const payloads = seqs.map((i) => JSON.stringify({ i }));
      await sql.unsafe(enqueue("select unnest($1::text[])::jsonb"), [payloads]);
    },
    async enqueueOne(seq) {
      await sql.unsafe(enqueue("values ($1::text::jsonb)"), [JSON.stringify({ i: seq })]);
    },
    ...rawWorkerMethods(sql, {
      claim: (limit) => sql.unsafe<RawRow[]>(claimSql, [limit], { prepare: true }),
      complete: (ids) => sql.unsafe(completeSql, [ids], { prepare: true }),
    }),
  };
}
