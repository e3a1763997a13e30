import type { FlowConfigRow } from "../sql/flow.ts";

/*
 * Scopes are what limits apply to, named as JSON arrays so no job type or key can spell another
 * scope: ["t", type] (a type's concurrency or rate), ["tk", type, key] (a type's limit per key),
 * ["k", key] (a key limit, whatever the type).
 */

export interface RateLimit {
  limit: number;
  intervalMs: number;
}

export interface DefinitionFlow {
  paused: boolean;
  maxConcurrency: number | null;
  maxConcurrencyPerKey: number | null;
  rate: RateLimit | null;
}

export interface KeyRule {
  pattern: string;
  maxConcurrency: number | null;
  rate: RateLimit | null;
}

/** The flow configuration one claim works with. */
export interface FlowConfig {
  /** Whether anything is configured at all. */
  active: boolean;
  /** Whether any limit is (a pause alone needs no pool headroom). */
  limited: boolean;
  paused: string[];
  definitions: Map<string, DefinitionFlow>;
  /** Exact keys, then prefixes longest first. */
  exact: Map<string, KeyRule>;
  prefixes: KeyRule[];
  /** Running jobs per concurrency scope, as last committed (a hint until counted under the lock). */
  running: [string, number][];
  /** Starts per rate scope in its window (a hint likewise). */
  started: [string, number][];
}

export interface FlowScopes {
  concurrency: { scope: string; limit: number }[];
  rate: { scope: string; limit: number; intervalMs: number }[];
}

const rateOf = (limit: unknown, ms: unknown): RateLimit | null =>
  limit == null ? null : { limit: Number(limit), intervalMs: Number(ms) };

/** The configuration row of the flow claim's first statement. */
export function readConfigRow(row: FlowConfigRow): FlowConfig {
  const definitions = new Map<string, DefinitionFlow>();
  const paused: string[] = [];
  let limited = false;
  for (const [jobType, isPaused, max, perKey, rate, ms] of row.definitions) {
    const d = {
      paused: isPaused === true,
      maxConcurrency: max == null ? null : Number(max),
      maxConcurrencyPerKey: perKey == null ? null : Number(perKey),
      rate: rateOf(rate, ms),
    };
    definitions.set(String(jobType), d);
    if (d.paused) paused.push(String(jobType));
    if (d.maxConcurrency !== null || d.maxConcurrencyPerKey !== null || d.rate !== null) limited = true;
  }
  const exact = new Map<string, KeyRule>();
  const prefixes: KeyRule[] = [];
  for (const [pattern, max, rate, ms] of row.key_limits) {
    const rule = { pattern: String(pattern), maxConcurrency: max == null ? null : Number(max), rate: rateOf(rate, ms) };
    if (rule.pattern.endsWith("*")) prefixes.push(rule);
    else exact.set(rule.pattern, rule);
    limited = true;
  }
  prefixes.sort((a, b) => b.pattern.length - a.pattern.length);
  const pairs = (value: [string, unknown][]) => value.map(([s, n]) => [s, Number(n)] as [string, number]);
  return {
    active: definitions.size > 0 || exact.size > 0 || prefixes.length > 0,
    limited,
    paused,
    definitions,
    exact,
    prefixes,
    running: pairs(row.running),
    started: pairs(row.started),
  };
}

/** The key limit for `key`: its exact pattern, else the longest matching `prefix*`. */
export function keyRule(config: Pick<FlowConfig, "exact" | "prefixes">, key: string): KeyRule | undefined {
  return config.exact.get(key) ?? config.prefixes.find((r) => key.startsWith(r.pattern.slice(0, -1)));
}

/** Every scope a job of `jobType` with `key` counts against. */
export function scopesOf(config: FlowConfig, jobType: string, key: string | null): FlowScopes {
  const out: FlowScopes = { concurrency: [], rate: [] };
  const d = config.definitions.get(jobType);
  if (d !== undefined) {
    const scope = JSON.stringify(["t", jobType]);
    if (d.maxConcurrency !== null) out.concurrency.push({ scope, limit: d.maxConcurrency });
    if (d.rate !== null) out.rate.push({ scope, limit: d.rate.limit, intervalMs: d.rate.intervalMs });
    if (key !== null && d.maxConcurrencyPerKey !== null) {
      out.concurrency.push({ scope: JSON.stringify(["tk", jobType, key]), limit: d.maxConcurrencyPerKey });
    }
  }
  if (key !== null) {
    const rule = keyRule(config, key);
    if (rule !== undefined) {
      const scope = JSON.stringify(["k", key]);
      if (rule.maxConcurrency !== null) out.concurrency.push({ scope, limit: rule.maxConcurrency });
      if (rule.rate !== null) out.rate.push({ scope, limit: rule.rate.limit, intervalMs: rule.rate.intervalMs });
    }
  }
  return out;
}
