import { getTableColumns, isTable, type Table } from "drizzle-orm";
import { expect, expectTypeOf, it } from "vitest";
import { schema } from "../../src/store/index.ts";
import type { DbRow } from "../../src/store/rows.ts";

const snake = (key: string) => key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);

it("every column's SQL name is its key in snake_case, so DbRow names raw rows' columns right", () => {
  const tables = (Object.values(schema) as unknown[]).filter((value): value is Table => isTable(value));
  expect(tables.length).toBeGreaterThan(10);
  const misnamed = tables.flatMap((table) =>
    Object.entries(getTableColumns(table))
      .filter(([key, column]) => snake(key) !== column.name)
      .map(([key, column]) => `${key} -> ${column.name}`),
  );
  expect(misnamed).toEqual([]);
});

it("DbRow types raw rows from the schema", () => {
  type JobRow = DbRow<typeof schema.jobQueue>;
  expectTypeOf<JobRow["job_type"]>().toEqualTypeOf<string>();
  expectTypeOf<JobRow["organization_id"]>().toEqualTypeOf<string | null>();
  expectTypeOf<JobRow["next_run_at"]>().toEqualTypeOf<string | Date>();
  expectTypeOf<JobRow>().not.toHaveProperty("jobType");
});
