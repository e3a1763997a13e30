import { sql } from "drizzle-orm";
import type { Executor } from "../db.ts";
import { queryRows } from "../query.ts";
import { toDate } from "../rows.ts";

/** `now` when given (tests set time instead of waiting for it), else the database's clock. */
export async function scheduleClock(executor: Executor, now: Date | undefined): Promise<Date> {
  if (now !== undefined) return now;
  const [row] = await queryRows<{ now: unknown }>(executor, sql`select now() as now`);
  return toDate(row!.now);
}
