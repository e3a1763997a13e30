import { sql } from "drizzle-orm";
import { check, index, integer, primaryKey, text, uuid } from "drizzle-orm/pg-core";
import { runledger, timestamps, tstz } from "./base.ts";

/*
 * Flow control (src/store/flow/). Limits live on job_definitions (per type) and here (per key
 * pattern). Running counts are never kept in a counter that completion would have to maintain:
 * a limited claim records a slot per (scope, job), and a slot counts only while its job is
 * LEASED, so a job that finished, failed or lost its lease frees its slot by itself, whichever
 * path ended it. Claims of one scope are serialized by a transaction-scoped advisory lock.
 */

/**
 * Limits for concurrency keys matching `pattern`: an exact key, or a prefix ending in `*`
 * (`tenant:*`). Each matching key gets its own limits; the longest matching pattern wins.
 */
export const flowKeyLimits = runledger.table(
  "flow_key_limits",
  {
    pattern: text("pattern").primaryKey(),
    maxConcurrency: integer("max_concurrency"),
    rateLimit: integer("rate_limit"),
    rateIntervalMs: integer("rate_interval_ms"),
    ...timestamps,
  },
  (t) => [
    check("ck_flow_key_limits_pattern_not_blank", sql`btrim(${t.pattern}) <> ''`),
    check("ck_flow_key_limits_max_concurrency_positive", sql`${t.maxConcurrency} is null or ${t.maxConcurrency} > 0`),
    check(
      "ck_flow_key_limits_rate_limit",
      sql`(${t.rateLimit} is null) = (${t.rateIntervalMs} is null) and (${t.rateLimit} is null or (${t.rateLimit} > 0 and ${t.rateIntervalMs} > 0))`,
    ),
    check("ck_flow_key_limits_some_limit", sql`${t.maxConcurrency} is not null or ${t.rateLimit} is not null`),
  ],
);

/** A running slot of a concurrency scope, held while `job_id` is LEASED (see above). */
export const flowSlots = runledger.table(
  "flow_slots",
  {
    scope: text("scope").notNull(),
    jobId: uuid("job_id").notNull(),
    createdAt: tstz("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ name: "pk_flow_slots", columns: [t.scope, t.jobId] })],
);

/**
 * Starts of a rate-limited scope, each kept until one interval after it (a durable sliding
 * window: a scope's starts in any interval are its rows not yet expired at the latest of them).
 */
export const flowRateStarts = runledger.table(
  "flow_rate_starts",
  {
    scope: text("scope").notNull(),
    jobId: uuid("job_id").notNull(),
    startedAt: tstz("started_at").notNull(),
    expiresAt: tstz("expires_at").notNull(),
  },
  (t) => [index("idx_flow_rate_starts_scope_expires").on(t.scope, t.expiresAt)],
);
