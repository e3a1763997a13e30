import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { afterAll, expect, it } from "vitest";
import { createDb, type Executor, queryRows } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";

// createDb's clients do not let postgres.js fetch the array types (see `fetch_types` in
// src/store/db.ts); the built-in ones are registered instead (src/store/array-types.ts). Arrays
// must read and bind exactly as through a postgres.js client left to its default.
const { db, url } = await useTestDatabase();
const reference = postgres(url, { max: 1, onnotice: () => {} });
const pooled = createDb(url, { max: 1, pooled: true });
afterAll(async () => {
  await reference.end({ timeout: 1 });
  await pooled.$runledger.close({ timeoutSeconds: 1 });
});
const driverDefault = drizzle(reference);

const ID = "0b6f3c1e-7a52-4f0e-9d3a-1c2b3d4e5f60";

const read = sql`select
  array['a', 'b"c', 'd\\e', null, 'NULL', '', 'x,y', '{z}']::text[] as texts,
  array[1, 2, null]::int4[] as ints,
  array[10000000000, -1]::int8[] as bigs,
  array[true, false]::bool[] as bools,
  array['{"a": [1, "b"]}', '[1,2]']::jsonb[] as docs,
  array['2024-01-02 03:04:05+00', '2024-06-30 23:59:59.5+00']::timestamptz[] as times,
  array['2024-01-02']::date[] as days,
  '{{1,2},{3,4}}'::int4[] as grid,
  array[1.5, 0.1]::numeric[] as nums,
  array[1.25]::float8[] as floats,
  array[${ID}::uuid] as ids,
  '{}'::text[] as empty,
  '{"(1,2),(3,4)";"(0,0),(1,1)"}'::box[] as boxes`;

const bound = sql`select
  ${sql.param(["a", 'b"c', "d\\e", null, "", "x,y", "{z}"])}::text[]::text as texts,
  ${sql.param([1, 2, null])}::int4[]::text as ints,
  ${sql.param([
    [1, 2],
    [3, 4],
  ])}::int4[]::text as grid,
  ${sql.param([ID])}::uuid[]::text as ids,
  ${sql.param([])}::text[]::text as empty`;

async function rows(executor: Executor) {
  return [await queryRows(executor, read), await queryRows(executor, bound)];
}

it("array values read and bind as through a postgres.js client with its own type fetch", async () => {
  const expected = await rows(driverDefault);
  // The reference really parsed and bound arrays (the comparison is not between two texts).
  expect((expected[0]![0] as { texts: unknown }).texts).toEqual(["a", 'b"c', "d\\e", "NULL", "NULL", "", "x,y", "{z}"]);
  expect((expected[1]![0] as { texts: unknown }).texts).toBe('{a,"b\\"c","d\\\\e",NULL,"","x,y","{z}"}');
  expect(await rows(db)).toEqual(expected);
  // A pooled handle's transactions run on a second client, which needs the same types.
  expect(await pooled.transaction((tx) => rows(tx))).toEqual(expected);
  expect(await rows(pooled)).toEqual(expected);
});
