import { RunledgerError } from "./errors.ts";

const UUID_PATTERN = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/**
 * A UUID read as an unsigned 128-bit big-endian integer, the way the reference implementation
 * derives retry and schedule jitter from ids. Throws `identifier.invalid_uuid` for anything that
 * is not 32 hex digits (hyphens optional).
 */
export function uuidToBigInt(id: string): bigint {
  if (typeof id !== "string" || !UUID_PATTERN.test(id)) {
    throw new RunledgerError("identifier.invalid_uuid", { internal: `not a UUID: ${String(id).slice(0, 64)}` });
  }
  return BigInt(`0x${id.replaceAll("-", "")}`);
}
