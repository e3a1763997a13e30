import type postgres from "postgres";
import { toQueryError } from "./errors.ts";

/*
 * postgres.js 3.4.9 takes the whole process down when the connection under a transaction dies
 * (porsager/postgres#1066, #1154, #1208): once the in-flight query has failed, `begin` writes
 * ROLLBACK (or ROLLBACK TO SAVEPOINT) on the closed connection, and that write throws from a
 * setImmediate callback that no caller can catch. A worker whose database restarts mid-reap or
 * mid-completion then exits instead of reconnecting.
 *
 * The guard keeps the driver from writing on a transaction connection after it was lost: the
 * first connection failure seen by any query of the transaction, or the driver's own rejection
 * of `begin` when the connection closes between statements, marks it lost; later queries
 * fail at once with that error instead of being sent; the transaction callback (and any
 * savepoint callback) then never settles, so the driver sends no ROLLBACK, and the caller gets
 * the connection error straight away. The server rolls the transaction back when the
 * connection drops, and the driver discards the connection itself when it sees it close.
 *
 * The driver reports the loss a few promise hops after the connection closes, and in between
 * the transaction may already send its next statement (or savepoint, or let the driver COMMIT):
 * onto a connection with no socket, whose deferred write throws from a setImmediate callback, the
 * same crash. `closes` counts the closes of the client's connections, bumped synchronously from
 * the driver's `onclose`. A transaction that sees the count changed since it last looked waits
 * one turn of the event loop before its next move, by which time a loss of its own connection is
 * known. The count moves only when a connection of the client closes, so this costs nothing
 * otherwise (test/store/transaction-guard.test.ts).
 */

/** How many of a client's connections have closed: `createDb` bumps it from the driver's `onclose`. */
export interface CloseCounter {
  count: number;
}

type Sql = postgres.Sql;
type Callback = (sql: postgres.TransactionSql) => unknown;

interface Lost {
  error: unknown;
  /** The client's close count when the transaction last checked it. */
  seen: number;
  closes: CloseCounter;
}

/**
 * Whether the transaction must wait a turn before its next write: no loss of its own connection
 * is known, but a connection of the client closed since it last made sure.
 */
function unsure(lost: Lost): boolean {
  return lost.error === undefined && lost.closes.count !== lost.seen;
}

/** Wait one turn of the event loop, after which a loss of the transaction's own connection is known. */
async function makeSure(lost: Lost): Promise<void> {
  const count = lost.closes.count;
  await new Promise<void>((resolve) => setImmediate(resolve));
  lost.seen = count;
}

/** `client` with `begin` guarded as described above; everything else passes through. */
export function guardTransactions(client: Sql, closes: CloseCounter = { count: 0 }): Sql {
  return new Proxy(client, {
    get(target, key, receiver) {
      if (key === "begin") return (...args: unknown[]) => guardedBegin(target, args, closes);
      return Reflect.get(target, key, receiver);
    },
  });
}

/** Whether a driver error means the connection is gone (rather than the statement failing). */
export function isConnectionLoss(error: unknown): boolean {
  return toQueryError(error).code === "db.connection_failed";
}

function guardedBegin(client: Sql, args: unknown[], closes: CloseCounter): Promise<unknown> {
  const fn = args.at(-1) as Callback;
  const lost: Lost = { error: undefined, seen: closes.count, closes };
  let reportLoss: (error: unknown) => void = () => {};
  const loss = new Promise<never>((_, reject) => {
    reportLoss = reject;
  });
  const run = (tx: postgres.TransactionSql) => scope(tx, fn, lost, reportLoss);
  // biome-ignore lint/suspicious/noExplicitAny: begin's overloads take an options string first or not.
  const begun = (client.begin as any)(...args.slice(0, -1), run) as Promise<unknown>;
  // The driver rejects `begin` as soon as the connection closes, but lets the callback run on:
  // from then on nothing may be written on it, not a statement and not the COMMIT.
  begun.catch((error: unknown) => {
    if (lost.error === undefined && isConnectionLoss(error)) lost.error = error;
  });
  return Promise.race([begun, loss]);
}

async function scope(tx: postgres.TransactionSql, fn: Callback, lost: Lost, reportLoss: (error: unknown) => void) {
  try {
    const result = await fn(guardTransaction(tx, lost, reportLoss));
    if (unsure(lost)) await makeSure(lost);
    // Lost while the callback ran between statements: resolving would make the driver COMMIT.
    if (lost.error !== undefined) {
      reportLoss(lost.error);
      return new Promise(() => {});
    }
    return result;
  } catch (error) {
    if (lost.error === undefined && isConnectionLoss(error)) lost.error = error;
    // Throwing makes the driver write ROLLBACK: first make sure the connection is still there.
    if (unsure(lost)) await makeSure(lost);
    if (lost.error === undefined) throw error;
    reportLoss(lost.error);
    return new Promise(() => {}); // settling would make the driver write ROLLBACK on a dead connection
  }
}

function guardTransaction(tx: postgres.TransactionSql, lost: Lost, reportLoss: (error: unknown) => void) {
  return new Proxy(tx, {
    get(target, key, receiver) {
      if (key === "unsafe") {
        return (...args: Parameters<Sql["unsafe"]>) => {
          if (lost.error !== undefined) return failed(lost.error);
          if (unsure(lost)) return afterTurn(() => target.unsafe(...args), lost);
          return watched(target.unsafe(...args), lost);
        };
      }
      if (key === "savepoint") {
        return async (...args: unknown[]) => {
          if (unsure(lost)) await makeSure(lost);
          if (lost.error !== undefined) throw lost.error;
          const fn = args.at(-1) as Callback;
          const run = (sp: postgres.TransactionSql) => scope(sp, fn, lost, reportLoss);
          // biome-ignore lint/suspicious/noExplicitAny: savepoint's overloads take a name first or not.
          return (target.savepoint as any)(...args.slice(0, -1), run);
        };
      }
      return Reflect.get(target, key, receiver);
    },
  });
}

/** A pending query whose connection failure marks the transaction lost. */
function watched<T extends PromiseLike<unknown> & { values(): unknown }>(query: T, lost: Lost): T {
  return new Proxy(query, {
    get(target, key) {
      if (key === "then") {
        return (onFulfilled?: (value: unknown) => unknown, onRejected?: (error: unknown) => unknown) =>
          target.then(onFulfilled, (error: unknown) => {
            if (lost.error === undefined && isConnectionLoss(error)) lost.error = error;
            if (onRejected === undefined) throw error;
            return onRejected(error);
          });
      }
      if (key === "values") return () => watched(target.values() as T, lost);
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * A query sent one turn later, unless the transaction is known lost by then: awaited for rows or
 * through `.values()` (what drizzle uses), sent once either way.
 */
function afterTurn(query: () => ReturnType<Sql["unsafe"]>, lost: Lost) {
  let sent: Promise<unknown> | undefined;
  const send = (values: boolean) =>
    (sent ??= makeSure(lost).then(() => {
      if (lost.error !== undefined) throw lost.error;
      const pending = watched(query(), lost);
      return values ? pending.values() : pending;
    }));
  return {
    // biome-ignore lint/suspicious/noThenProperty: awaited like the driver's own query.
    then: (onFulfilled?: (value: unknown) => unknown, onRejected?: (error: unknown) => unknown) =>
      send(false).then(onFulfilled, onRejected),
    catch: (onRejected?: (error: unknown) => unknown) => send(false).catch(onRejected),
    finally: (onFinally?: () => void) => send(false).finally(onFinally),
    values: () => send(true),
  };
}

/** What a query on a lost transaction returns instead of being sent: the loss, also through `.values()`. */
function failed(error: unknown): Promise<never> & { values(): Promise<never> } {
  const rejection = Promise.reject(error);
  rejection.catch(() => {}); // whoever awaits it still sees the rejection
  return Object.assign(rejection, { values: () => rejection });
}
