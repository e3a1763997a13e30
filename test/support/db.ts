import { afterAll } from "vitest";
import { type EphemeralDatabase, setupEphemeralDatabase } from "../../src/testing/index.ts";

/**
 * A database of this test file's own, cloned from the migrated template and dropped after the
 * file's tests (kept with RUNLEDGER_KEEP_TEST_DB=1).
 */
export async function useTestDatabase(options: { max?: number } = {}): Promise<EphemeralDatabase> {
  const database = await setupEphemeralDatabase(options);
  afterAll(() => database.teardown());
  return database;
}
