import { compileCron, scheduleJitterSeconds } from "./cron.ts";
import { RunledgerError } from "./errors.ts";

/**
 * What a schedule does when a slot comes due while the job of its previous fire is still
 * pending or running: `ALLOW` fires anyway, `SKIP` drops the slot (counted), `BUFFER_ONE` holds
 * it and fires it once that job has finished (one slot at most; later ones are dropped).
 */
export const SCHEDULE_OVERLAP_POLICIES = ["ALLOW", "SKIP", "BUFFER_ONE"] as const;
export type ScheduleOverlapPolicy = (typeof SCHEDULE_OVERLAP_POLICIES)[number];

/** Longest catch-up window a schedule may carry: 366 days. */
export const MAX_CATCHUP_WINDOW_SECONDS = 366 * 86_400;

/** Slots one scheduler pass examines per schedule; a longer backlog is worked off pass by pass. */
export const MAX_SLOTS_PER_PASS = 5_000;

/** Jobs one scheduler pass enqueues per schedule. */
export const MAX_FIRES_PER_PASS = 1_000;

/** Slots one backfill request may cover. */
export const MAX_BACKFILL_SLOTS = 10_000;

/** Throws `job_schedule.invalid_overlap_policy` unless `policy` is one of `SCHEDULE_OVERLAP_POLICIES`. */
export function validateOverlapPolicy(policy: string): asserts policy is ScheduleOverlapPolicy {
  if (!(SCHEDULE_OVERLAP_POLICIES as readonly string[]).includes(policy)) {
    throw new RunledgerError("job_schedule.invalid_overlap_policy", {
      details: { allowed: [...SCHEDULE_OVERLAP_POLICIES] },
    });
  }
}

/** Throws `job_schedule.invalid_catchup_window` unless `seconds` is an integer in `0..=MAX_CATCHUP_WINDOW_SECONDS`. */
export function validateCatchupWindowSeconds(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_CATCHUP_WINDOW_SECONDS) {
    throw new RunledgerError("job_schedule.invalid_catchup_window", {
      details: { maxCatchupWindowSeconds: MAX_CATCHUP_WINDOW_SECONDS },
    });
  }
}

/** What the scheduler knows of a schedule when it comes due. */
export interface ScheduleCursor {
  id: string;
  cronExpr: string;
  timezone: string;
  maxJitterSeconds: number;
  overlapPolicy: ScheduleOverlapPolicy;
  catchupWindowSeconds: number;
  /** The slot the cursor stands at. */
  nextSlotAt: Date;
  /** When that slot is due: the slot plus its jitter. */
  nextFireAt: Date;
  /** A slot `BUFFER_ONE` holds until the previous fire's job has finished. */
  bufferedSlotAt: Date | null;
  /** Whether the job of the schedule's previous fire is still pending or running. */
  lastJobLive: boolean;
}

/** What one scheduler pass does with one schedule. */
export interface SchedulePlan {
  /** Slots to enqueue now, each as one job, in this order. */
  fire: Date[];
  /** The slot held after this pass (`BUFFER_ONE`), or null. */
  bufferedSlotAt: Date | null;
  /** Slots skipped because a later slot was also due and they were older than the catch-up window. */
  missed: number;
  /** Slots skipped because the previous fire's job was still live (`SKIP`, or `BUFFER_ONE` with one held). */
  overlapSkipped: number;
  /** Where the cursor moves; null when the expression has no later slot (the schedule is exhausted). */
  next: { slotAt: Date; fireAt: Date } | null;
  /** The pass stopped at its per-schedule limits with slots still due. */
  more: boolean;
}

/** When `slot` is due: the slot plus the schedule's deterministic jitter. */
export function scheduleFireTime(scheduleId: string, slot: Date, maxJitterSeconds: number): Date {
  return new Date(slot.getTime() + scheduleJitterSeconds(scheduleId, slot, maxJitterSeconds) * 1000);
}

/**
 * Decide one pass for one schedule at `now`, purely.
 *
 * Due slots are walked from the cursor in order. The latest due slot always fires, however late
 * (the scheduler polls, so every fire is a little late); earlier ones, which a downtime or a pause
 * let pass, fire too when they are no older than `catchupWindowSeconds`, and are otherwise
 * skipped and counted as missed. The overlap policy then applies to the slots to fire, in order:
 * a buffered slot is released first once the previous job is no longer live, and a job enqueued
 * in this pass counts as live for the slots after it.
 */
export function planScheduleFires(
  cursor: ScheduleCursor,
  now: Date,
  limits: { maxSlots?: number; maxFires?: number } = {},
): SchedulePlan {
  const maxSlots = limits.maxSlots ?? MAX_SLOTS_PER_PASS;
  const maxFires = limits.maxFires ?? MAX_FIRES_PER_PASS;
  const cron = compileCron(cursor.cronExpr, cursor.timezone);
  const windowStart = now.getTime() - cursor.catchupWindowSeconds * 1000;
  const due: Date[] = [];
  let missed = 0;
  let more = false;
  let next: SchedulePlan["next"] = { slotAt: cursor.nextSlotAt, fireAt: cursor.nextFireAt };
  for (let steps = 0; next !== null && next.fireAt <= now; steps++) {
    if (steps >= maxSlots || due.length >= maxFires) {
      more = true;
      break;
    }
    const slot = next.slotAt;
    const following = cron.next(slot);
    next =
      following === null
        ? null
        : { slotAt: following, fireAt: scheduleFireTime(cursor.id, following, cursor.maxJitterSeconds) };
    const latest = next === null || next.fireAt > now;
    if (latest || slot.getTime() >= windowStart) due.push(slot);
    else missed++;
  }

  const fire: Date[] = [];
  let buffered = cursor.bufferedSlotAt;
  let live = cursor.lastJobLive;
  let overlapSkipped = 0;
  if (buffered !== null && !live) {
    fire.push(buffered);
    buffered = null;
    live = true;
  }
  for (const slot of due) {
    if (cursor.overlapPolicy === "ALLOW" || !live) {
      fire.push(slot);
      live = true;
    } else if (cursor.overlapPolicy === "BUFFER_ONE" && buffered === null) {
      buffered = slot;
    } else {
      overlapSkipped++;
    }
  }
  // An exhausted schedule is deactivated, so a slot it still holds could never be released.
  if (next === null && buffered !== null) {
    buffered = null;
    overlapSkipped++;
  }
  return { fire, bufferedSlotAt: buffered, missed, overlapSkipped, next, more };
}

/**
 * The slots of `expr` in `timeZone` with `from <= slot < to`, oldest first. Throws
 * `job_schedule.backfill_too_large` past `limit` slots.
 */
export function scheduleSlotsBetween(
  expr: string,
  timeZone: string,
  from: Date,
  to: Date,
  limit: number = MAX_BACKFILL_SLOTS,
): Date[] {
  const cron = compileCron(expr, timeZone);
  const slots: Date[] = [];
  // Slots fall on whole seconds; a millisecond before `from` makes `from` itself a candidate.
  for (let slot = cron.next(new Date(from.getTime() - 1)); slot !== null && slot < to; slot = cron.next(slot)) {
    if (slots.length >= limit) {
      throw new RunledgerError("job_schedule.backfill_too_large", { details: { maxSlots: limit } });
    }
    slots.push(slot);
  }
  return slots;
}

/** The next `count` slots from `first` on (itself included), each with the time it is due. */
export function upcomingScheduleSlots(
  cursor: Pick<ScheduleCursor, "id" | "cronExpr" | "timezone" | "maxJitterSeconds" | "nextSlotAt" | "nextFireAt">,
  count: number,
): { scheduledFor: Date; fireAt: Date }[] {
  const out: { scheduledFor: Date; fireAt: Date }[] = [];
  if (count <= 0) return out;
  out.push({ scheduledFor: cursor.nextSlotAt, fireAt: cursor.nextFireAt });
  const cron = compileCron(cursor.cronExpr, cursor.timezone);
  for (let slot = cron.next(cursor.nextSlotAt); slot !== null && out.length < count; slot = cron.next(slot)) {
    out.push({ scheduledFor: slot, fireAt: scheduleFireTime(cursor.id, slot, cursor.maxJitterSeconds) });
  }
  return out;
}
