import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type * as schema from "./schema/index.ts";

/*
 * The handle's types, apart from the code that builds handles: `db.ts` (postgres.js) and
 * `pglite.ts` (PGlite) both make a `RunledgerDb`, and `db.ts` loads `pglite.ts`, so the types
 * they share live here rather than in either of them.
 */

/** The table objects; `db.query.*` and the builder know every runledger table through it. */
export type RunledgerSchema = typeof schema;

/**
 * What every store function takes first: a `RunledgerDb` or a transaction opened with
 * `db.transaction(tx => …)`, so jobs and workflows can be written atomically with the
 * application's own rows.
 */
// biome-ignore lint/suspicious/noExplicitAny: drizzle types a db created with a schema and a bare transaction differently.
export type Executor = PgDatabase<PgQueryResultHKT, any>;

/** A LISTEN subscription; `unlisten()` stops it. */
export interface Subscription {
  unlisten(): Promise<void>;
}

/** What the runtime needs beyond SQL: notifications and closing the pool. */
export interface RunledgerDriver {
  /** Which client is underneath: a postgres.js pool or an embedded PGlite instance. */
  readonly kind: "postgres-js" | "pglite";
  /**
   * Whether hot statements are sent as named prepared statements: true for a postgres.js handle
   * made with `prepare` (the default) and not `pooled`; false for a pooled handle and for PGlite.
   */
  readonly prepare: boolean;
  /**
   * Whether `listen` can work. False for a pooled handle without `listenUrl`: LISTEN is session
   * state, which a transaction-mode pooler does not keep, so the worker polls instead.
   */
  readonly notifications: boolean;
  /**
   * Subscribe to a channel. `onListen` runs each time the subscription is (re)established, so a
   * caller can re-poll for work announced while the connection was down.
   */
  listen(channel: string, onNotify: (payload: string) => void, onListen?: () => void): Promise<Subscription>;
  /** Close the connections this handle owns. */
  close(options?: { timeoutSeconds?: number }): Promise<void>;
}

export type RunledgerDb = PgDatabase<PgQueryResultHKT, RunledgerSchema> & { readonly $runledger: RunledgerDriver };
