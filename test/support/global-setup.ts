import { ensureTemplate, resolveServerUrl } from "../../src/testing/index.ts";

/** Build the migrated template once before any test file clones it. */
export default async function setup(): Promise<void> {
  await ensureTemplate(await resolveServerUrl());
}
