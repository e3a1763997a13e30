// The raw-SQL ceiling: one table and the fastest shape a Postgres queue can take. Batch insert;
// claim with UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT 500) RETURNING; complete
// with one DELETE … WHERE id = ANY($ids) in flight while the next ids accumulate; a statement-level
// trigger NOTIFYs once per insert statement and wakes the worker. No history, retries or leases.
import postgres from "postgres";
import type { BenchSystem, JobHandler } from "../system.ts";

const CLAIM = 500;
const CHANNEL = "bench_raw";
const POLL_MS = 1000;

/** DDL for a statement-level trigger on `table` that wakes the raw workers once per insert statement. */
export function notifyOnInsert(table: string): string {
  return `create or replace function bench_raw_notify() returns trigger language plpgsql as
      $$ begin perform pg_notify('${CHANNEL}', ''); return null; end $$;
    create or replace trigger bench_raw_notify after insert on ${table}
      for each statement execute function bench_raw_notify();`;
}

export function rawSystem(url: string): BenchSystem {
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  return {
    name: "raw",
    pendingQuery: "select count(*)::int as n from bench_raw_jobs",
    async setup() {
      await sql.unsafe(`
        create table if not exists bench_raw_jobs (id bigserial primary key, payload jsonb not null, locked_at timestamptz);
        create index if not exists bench_raw_jobs_ready on bench_raw_jobs (id) where locked_at is null;
        ${notifyOnInsert("bench_raw_jobs")}
      `);
    },
    async enqueueBatch(seqs) {
      const payloads = seqs.map((i) => JSON.stringify({ i }));
      await sql`insert into bench_raw_jobs (payload) select unnest(${payloads}::text[])::jsonb`;
    },
    async enqueueOne(seq) {
      await sql`insert into bench_raw_jobs (payload) values (${JSON.stringify({ i: seq })}::text::jsonb)`;
    },
    ...rawWorkerMethods(sql, {
      claim: (limit) => sql<RawRow[]>`
        update bench_raw_jobs set locked_at = now()
        where id in (
          select id from bench_raw_jobs where locked_at is null order by id limit ${limit} for update skip locked
        )
        returning id, payload`,
      complete: (ids) => sql`delete from bench_raw_jobs where id = any(${ids}::bigint[])`,
    }),
  };
}

/** A claimed job as the raw workers run it. */
export interface RawRow {
  id: string;
  payload: { i: number };
}

/** The two statements a raw worker runs: claim up to `limit` jobs, and record `ids` as done. */
export interface RawStatements {
  claim(limit: number): Promise<RawRow[]>;
  complete(ids: string[]): Promise<unknown>;
}

/** A raw system's worker and shutdown: a `RawWorker` running `statements` on `sql`. */
export function rawWorkerMethods(
  sql: postgres.Sql,
  statements: RawStatements,
): Pick<BenchSystem, "startWorker" | "stopWorker" | "close"> {
  let worker: RawWorker | undefined;
  return {
    async startWorker(concurrency, handler) {
      worker = new RawWorker(sql, concurrency, handler, statements);
      await worker.start();
    },
    async stopWorker() {
      await worker?.stop();
      worker = undefined;
    },
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}

/**
 * The raw systems' worker: claims up to 500 jobs while fewer than that wait, runs `concurrency`
 * handlers, and keeps one completion in flight while the next ids accumulate; LISTEN wakes it.
 */
class RawWorker {
  readonly #queue: RawRow[] = [];
  readonly #done: string[] = [];
  #inFlight = 0;
  #flushing: Promise<void> | undefined;
  #stopped = false;
  #wake: (() => void) | undefined;
  #woken = false;
  #loop: Promise<void> | undefined;
  #unlisten: (() => Promise<void>) | undefined;

  constructor(
    private readonly sql: postgres.Sql,
    private readonly concurrency: number,
    private readonly handler: JobHandler,
    private readonly statements: RawStatements,
  ) {}

  async start(): Promise<void> {
    const sub = await this.sql.listen(
      CHANNEL,
      () => this.wake(),
      () => this.wake(),
    );
    this.#unlisten = () => sub.unlisten();
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.wake();
    await this.#loop;
    while (this.#inFlight > 0 || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 1));
    await this.#flush();
    await this.#unlisten?.();
  }

  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const room = this.concurrency + CLAIM - this.#inFlight - this.#queue.length;
      const limit = Math.min(room, CLAIM);
      let claimed = 0;
      if (limit > 0) {
        const rows = await this.statements.claim(limit);
        claimed = rows.length;
        this.#queue.push(...rows);
        this.#pump();
      }
      if (this.#stopped) break;
      if (claimed > 0 && claimed === limit) continue;
      await this.#sleep(POLL_MS);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.#wake = undefined;
        self.#woken = false;
        resolve();
      }
      this.#wake = done;
    });
  }

  #pump(): void {
    while (this.#inFlight < this.concurrency && this.#queue.length > 0) {
      const row = this.#queue.shift()!;
      this.#inFlight++;
      Promise.resolve()
        .then(() => this.handler(row.payload.i))
        .then(() => {
          this.#inFlight--;
          this.#done.push(row.id);
          void this.#flush();
          this.#pump();
          if (this.#queue.length <= CLAIM / 2) this.wake();
        });
    }
  }

  /** One completion in flight; ids that finish meanwhile go into the next one. */
  #flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#done.length === 0) return Promise.resolve();
    this.#flushing = (async () => {
      while (this.#done.length > 0) {
        const ids = this.#done.splice(0);
        await this.statements.complete(ids);
      }
      this.#flushing = undefined;
    })();
    return this.#flushing;
  }
}
