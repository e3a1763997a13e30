import net from "node:net";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { RunledgerError } from "../core/index.ts";
import { registerArrayTypes } from "./array-types.ts";
import type { RunledgerDb, RunledgerDriver } from "./handle.ts";
import { isPGliteClient, type PGliteClient, pgliteDb } from "./pglite.ts";
import * as schema from "./schema/index.ts";
import { type CloseCounter, guardTransactions } from "./transaction-guard.ts";

export type { Executor, RunledgerDb, RunledgerDriver, RunledgerSchema, Subscription } from "./handle.ts";

export interface CreateDbOptions {
  /** Pool size when a URL is given. Default 10. */
  max?: number;
  /**
   * Use named prepared statements for hot queries (default true; false when `pooled`). Unnamed
   * statements cost postgres.js an extra round trip for each statement with parameters.
   */
  prepare?: boolean;
  /**
   * The URL points at a transaction-mode pooler such as PgBouncer: no named prepared statements
   * and no LISTEN through it (both are session state the pooler does not keep). Notifications
   * then come from `listenUrl`, or not at all (the worker polls and says so once). Queries are
   * not pipelined on a connection (a pooler may reassign it between them), and transactions use
   * a second pool of up to `max` connections. Give a URL: a postgres.js client passed in is used
   * as it is.
   */
  pooled?: boolean;
  /**
   * A direct server URL (not through a pooler) for LISTEN: one session connection, opened by the
   * first `listen` and closed with the handle. Default: the pool's own URL, unless `pooled`.
   */
  listenUrl?: string;
  /** `application_name` shown in `pg_stat_activity`. Default `runledger`. */
  applicationName?: string;
}

/**
 * How long postgres.js waits before reconnecting, in seconds: from 25 ms, doubling, at most 1 s
 * (with jitter). Each failed attempt fails only the one statement it was opened for, and its
 * default delay grows to 20 s on a retry count the pool shares with the LISTEN connection (which
 * keeps reconnecting through an outage): a second into an outage statements stopped failing and
 * waited in the queue instead, so the loops saw no error to back off from and report, and after
 * the database returned they waited up to 20 s more. The loops own the backoff
 * (`withLoopBackoff`); a statement fails promptly.
 */
function reconnectDelaySeconds(retries: number): number {
  return Math.min(0.025 * 2 ** retries, 1) * (0.5 + Math.random() / 2);
}

/*
 * postgres.js 3.4.9 sends a write smaller than 1 KiB from a `setImmediate`, and arms that timer
 * only while it holds none. When a connection closes with such a write pending, its teardown
 * (`closed()` in src/connection.js) cancels the timer but keeps the handle and the unsent bytes;
 * a pending write is always there when a statement lands on a connection whose backend was
 * terminated with another's (a restart, a failover, `pg_terminate_backend`), since the first
 * close sends its waiters to the second. The connection object is reused by the pool, so its next
 * startup message waits behind a timer that will never fire: the statement that needed it fails
 * with CONNECT_TIMEOUT after 30 s, and so does every later one the pool gives that slot
 * (porsager/postgres#1209, #1215). A write of 1 KiB or more is sent at once and resets both, so a
 * direct connection's startup message carries one placeholder setting that brings it past 1 KiB:
 * a poisoned slot sends its stale bytes with the startup, the server refuses that one attempt,
 * and the driver reconnects cleanly. Not through a pooler, which refuses startup parameters it
 * does not know (test/store/poisoned-connection.test.ts).
 */
const STARTUP_PADDING = { "runledger.startup_padding": "-".repeat(1024) };

/** What postgres.js hands a `socket` function: its parsed options. */
interface SocketTarget {
  host: string[];
  port: number[];
  path: string | false;
}

/**
 * The sockets of one handle's clients, opened here (postgres.js's `socket` option) so that none
 * opens after the handle closed. postgres.js 3.4.9 opens a connection from a reconnect timer
 * that ending the client does not cancel (`reconnect()` in src/connection.js; `terminate()`
 * leaves the timer, and `connect()` clears the terminated flag): a statement or a LISTEN waiting
 * out its reconnect delay when the client ends, as after any outage, opens a connection nobody
 * owns, and the process never exits. Closing refuses new sockets and destroys those still open.
 *
 * postgres.js connects a socket of its own to the next host on every attempt; these go to the
 * hosts in turn across the handle's connections, and a host given as a directory is its Unix socket.
 */
class HandleSockets {
  readonly #open = new Set<net.Socket>();
  #closed = false;
  #next = 0;

  /** The client option (documented by postgres.js, missing from its types). */
  readonly option: { socket: (target: SocketTarget) => net.Socket } = { socket: (target) => this.#connect(target) };

  #connect(target: SocketTarget): net.Socket {
    if (this.#closed) throw Object.assign(new Error("The database handle is closed."), { code: "CONNECTION_ENDED" });
    // postgres.js may take over a socket's listeners (TLS), so closed ones are dropped here.
    for (const socket of this.#open) if (socket.destroyed) this.#open.delete(socket);
    const i = this.#next++ % target.host.length;
    const socket = target.path ? net.connect(target.path) : net.connect(target.port[i] ?? 5432, target.host[i]);
    // What postgres.js sets on the sockets it connects: the TLS server name and error messages read them.
    Object.assign(socket, { host: target.path || target.host[i], port: target.port[i] });
    this.#open.add(socket);
    return socket;
  }

  close(): void {
    this.#closed = true;
    for (const socket of this.#open) socket.destroy();
    this.#open.clear();
  }
}

/** The startup parameters of a client: its application name, and the padding above unless it is `pooled`. */
export function startupParameters(applicationName: string, pooled: boolean): Record<string, string> {
  return pooled ? { application_name: applicationName } : { application_name: applicationName, ...STARTUP_PADDING };
}

/**
 * Refuse what postgres.js would misread: an empty or missing URL (it would quietly connect to
 * localhost) and text that is not a `postgres://` or `postgresql://` URL. The URL itself is never
 * repeated, since it may hold a password.
 */
function checkUrl(url: unknown): void {
  if (typeof url !== "string" || url.trim() === "") {
    throw new RunledgerError("db.invalid_url", {
      reason: "It is empty; set DATABASE_URL (or pass the URL) to postgres://user@host:5432/database.",
      details: { problem: "empty" },
    });
  }
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new RunledgerError("db.invalid_url", {
      reason: "It is not a URL; expected postgres://user@host:5432/database.",
      details: { problem: "not_a_url" },
    });
  }
  if (protocol !== "postgres:" && protocol !== "postgresql:") {
    throw new RunledgerError("db.invalid_url", {
      reason: "It must start with postgres:// or postgresql://.",
      details: { problem: "protocol" },
    });
  }
}

/**
 * Open a runledger database handle from a connection URL or an existing postgres.js client.
 * A handle made from a URL owns its pool and `db.$runledger.close()` ends it; a handle made
 * from a client leaves closing the client to its owner, and keeps the client's reconnect delay
 * (postgres.js's grows to 20 s, during which statements wait instead of failing: give it
 * `backoff: 1` or less so a worker notices an outage and says so), and its `fetch_types` (give
 * it `false`: with the default, postgres.js 3.4.9 can end the process when the server goes away
 * while a new connection starts, porsager/postgres#1192).
 *
 * A handle made from a URL knows the arrays of built-in types (`text[]`, `uuid[]`, …) as
 * postgres.js does; arrays of the database's own types (enums, domains) are read as text.
 *
 * A URL that is empty or not a `postgres://` URL is refused with `db.invalid_url`.
 *
 * Given a `PGlite` instance it resolves to a handle built with `drizzle-orm/pglite` (loaded only
 * then, hence the promise) whose notifications use PGlite's own `listen()`; closing the instance
 * stays with its owner. `createEmbeddedDb(dataDir)` makes a handle that owns its instance.
 */
export function createDb(urlOrClient: string | postgres.Sql, options?: CreateDbOptions): RunledgerDb;
export function createDb(pglite: PGliteClient): Promise<RunledgerDb>;
export function createDb(
  urlOrClient: string | postgres.Sql | PGliteClient,
  options: CreateDbOptions = {},
): RunledgerDb | Promise<RunledgerDb> {
  if (isPGliteClient(urlOrClient)) return pgliteDb(urlOrClient, false);
  if (typeof urlOrClient !== "function") checkUrl(urlOrClient);
  if (options.listenUrl !== undefined) checkUrl(options.listenUrl);
  const pooled = options.pooled ?? false;
  const prepare = pooled ? false : (options.prepare ?? true);
  const owned = typeof urlOrClient === "string";
  // Every close of a connection of this handle's clients, for the transaction guard.
  const closes: CloseCounter = { count: 0 };
  const sockets = new HandleSockets();
  const connect = (url: string, settings: { max_pipeline?: number } = {}) =>
    postgres(url, {
      ...sockets.option,
      onclose: () => {
        closes.count++;
      },
      max: options.max ?? 10,
      prepare,
      onnotice: () => {},
      backoff: reconnectDelaySeconds,
      // postgres.js 3.4.9 starts every new connection with a catalog query for the array types
      // (`fetchArrayTypes`, called from `ReadyForQuery` in src/connection.js) and drops that
      // query's promise. When the server goes away while it is in flight (a restart, a failover,
      // a terminated backend), the driver reconnects for the statement waiting behind it and then
      // rejects the dropped promise with whatever that attempt meets (`connect ECONNREFUSED`, or
      // the old backend's error replayed): an unhandled rejection, which ends a Node process
      // (porsager/postgres#1192, #1205, #1223). Nothing outside the driver can catch it, so the
      // query is not sent; the built-in array types are registered when the client is made.
      fetch_types: false,
      connection: startupParameters(options.applicationName ?? "runledger", pooled),
      ...settings,
    });
  // postgres.js pipelines a query onto a busy connection when every connection is busy. A
  // transaction-mode pooler (PgBouncer before 1.21, Supavisor) hands the server connection to
  // another client when the first query ends, so the pipelined query's replies reach no one and
  // its caller waits forever (porsager/postgres#970). A pooled handle's statements therefore go
  // one at a time per connection (`max_pipeline: 0`). That setting keeps `begin` from reserving
  // its connection (porsager/postgres#1210), so transactions get a client of their own, where
  // pipelining is harmless: the pooler keeps a server connection linked until the transaction ends.
  const client =
    typeof urlOrClient === "string" ? connect(urlOrClient, pooled ? { max_pipeline: 0 } : {}) : urlOrClient;
  const transactions = owned && pooled ? connect(urlOrClient) : undefined;

  const applicationName = options.applicationName ?? "runledger";
  // postgres.js gives LISTEN a connection of its own, outside the pool; with listenUrl that
  // connection goes straight to the server while queries go through the pooler.
  let listener: postgres.Sql | undefined;
  const listenClient = (): postgres.Sql => {
    if (options.listenUrl === undefined) return client;
    listener ??= postgres(options.listenUrl, {
      ...sockets.option,
      max: 1,
      onnotice: () => {},
      backoff: reconnectDelaySeconds,
      connection: startupParameters(`${applicationName}-listen`, false),
    });
    return listener;
  };
  const notifications = !pooled || options.listenUrl !== undefined;

  const driver: RunledgerDriver = {
    kind: "postgres-js",
    prepare: prepare && client.options.prepare !== false,
    notifications,
    async listen(channel, onNotify, onListen) {
      if (!notifications) throw new RunledgerError("db.listen_unavailable");
      const sub = await listenClient().listen(channel, onNotify, onListen);
      return { unlisten: () => sub.unlisten() };
    },
    async close(closeOptions) {
      const timeout = closeOptions?.timeoutSeconds ?? 5;
      await listener?.end({ timeout });
      if (owned) await Promise.all([client.end({ timeout }), transactions?.end({ timeout })]);
      sockets.close();
    },
  };

  // Transactions go through the guard: a connection lost mid-transaction must not crash the process.
  const db = drizzle(
    guardTransactions(transactions === undefined ? client : withTransactionsOn(client, transactions), closes),
    {
      schema,
    },
  );
  // After drizzle: an array type takes its element type's parser as drizzle left it.
  if (owned) registerArrayTypes(client);
  // drizzle sets its value handling (dates and JSON passed through as text) on the client it is
  // given; the transactions client needs the same.
  if (transactions !== undefined) {
    registerArrayTypes(transactions);
    Object.assign(transactions.options.parsers, client.options.parsers);
    Object.assign(transactions.options.serializers, client.options.serializers);
  }
  return Object.assign(db, { $runledger: driver }) as unknown as RunledgerDb;
}

/** `statements` for everything but `begin`, which runs on `transactions`. */
function withTransactionsOn(statements: postgres.Sql, transactions: postgres.Sql): postgres.Sql {
  return new Proxy(statements, {
    get(target, key, receiver) {
      if (key === "begin") return transactions.begin.bind(transactions);
      return Reflect.get(target, key, receiver);
    },
  });
}
