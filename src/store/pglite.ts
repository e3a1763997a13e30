import { RunledgerError } from "../core/index.ts";
import type { RunledgerDb, RunledgerDriver } from "./handle.ts";
import * as schema from "./schema/index.ts";

/**
 * The part of a `PGlite` instance runledger uses. Typed structurally so this module (and its
 * declarations) never needs `@electric-sql/pglite` unless a PGlite handle is actually made.
 */
export interface PGliteClient {
  query(query: string, params?: unknown[], options?: unknown): Promise<unknown>;
  transaction<T>(callback: (tx: unknown) => Promise<T>): Promise<T>;
  listen(channel: string, callback: (payload: string) => void): Promise<(tx?: never) => Promise<void>>;
  close(): Promise<void>;
  readonly closed: boolean;
  readonly waitReady: Promise<void>;
}

/** Whether a value is a PGlite instance rather than a URL or a postgres.js client (a function). */
export function isPGliteClient(value: unknown): value is PGliteClient {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as PGliteClient).query === "function" &&
    typeof (value as PGliteClient).listen === "function" &&
    typeof (value as PGliteClient).transaction === "function"
  );
}

/**
 * Import a module that needs the optional peer `@electric-sql/pglite`; when it is not installed,
 * throw `db.embedded_unavailable`, whose message says what to install.
 */
async function importOptional<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ERR_MODULE_NOT_FOUND" && String((error as Error).message).includes("@electric-sql/pglite")) {
      throw new RunledgerError("db.embedded_unavailable", { cause: error });
    }
    throw error;
  }
}

/**
 * A runledger handle over a PGlite instance, built with `drizzle-orm/pglite` (loaded on first
 * use, so applications without PGlite never import it). `owned` decides whether `close()` closes
 * the instance.
 */
export async function pgliteDb(client: PGliteClient, owned: boolean): Promise<RunledgerDb> {
  const { drizzle } = await importOptional(() => import("drizzle-orm/pglite"));
  await client.waitReady;
  const driver: RunledgerDriver = {
    kind: "pglite",
    // drizzle-orm/pglite ignores statement names; PGlite has one connection and no pool to share.
    prepare: false,
    notifications: true,
    async listen(channel, onNotify, onListen) {
      const unlisten = await client.listen(channel, onNotify);
      // One in-process connection: it is never re-established, so this runs exactly once.
      onListen?.();
      return {
        async unlisten() {
          if (!client.closed) await unlisten();
        },
      };
    },
    async close() {
      if (owned && !client.closed) await client.close();
    },
  };
  // biome-ignore lint/suspicious/noExplicitAny: the structural client stands in for PGlite's own type.
  const db = drizzle(client as any, { schema });
  return Object.assign(db, { $runledger: driver }) as unknown as RunledgerDb;
}

/**
 * Open (creating it on first use) an embedded PGlite database in `dataDir` — a directory, or
 * `undefined` for an in-memory one — and return a handle that owns it: `db.$runledger.close()`
 * closes the instance. Only one process may open a data directory at a time. Requires the
 * optional peer dependency `@electric-sql/pglite` (`db.embedded_unavailable` without it).
 */
export async function createEmbeddedDb(dataDir?: string): Promise<RunledgerDb> {
  const { PGlite } = await importOptional(() => import("@electric-sql/pglite"));
  const client = await PGlite.create(dataDir === undefined ? {} : { dataDir });
  try {
    return await pgliteDb(client, true);
  } catch (error) {
    await client.close();
    throw error;
  }
}
