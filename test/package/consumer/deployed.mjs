// Run by test/package/consumer.test.ts around the app's deploy step, which applies runledger's
// migrations with `drizzle-kit migrate --config node_modules/runledger/drizzle.config.ts`.
// argv: database URL. Prints one line of JSON: what ensureSchemaCompatible says, both journals
// (null when absent) and the app's own tables.
import { sql } from "drizzle-orm";
import { createDb, ensureSchemaCompatible, queryRows } from "runledger/store";

const [url] = process.argv.slice(2);
if (!url) throw new Error("usage: node deployed.mjs <database-url>");

const db = createDb(url, { max: 1 });

async function journal(schema) {
  const [{ table }] = await queryRows(db, sql`select to_regclass(${`${schema}.__drizzle_migrations`})::text as table`);
  if (table === null) return null;
  return queryRows(
    db,
    sql`select id, hash, created_at::text as created_at from ${sql.identifier(schema)}.__drizzle_migrations order by id`,
  );
}

try {
  const compatible = await ensureSchemaCompatible(db).then(
    (report) => ({ state: report.state, bundled: report.bundled }),
    (error) => ({ state: error.code }),
  );
  const tables = await queryRows(
    db,
    sql`select table_name from information_schema.tables where table_schema = 'public' order by 1`,
  );
  const summary = {
    ...compatible,
    runledgerJournal: await journal("runledger"),
    appJournal: await journal("drizzle"),
    appTables: tables.map((row) => row.table_name),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} finally {
  await db.$runledger.close();
}
