// Run by test/package/consumer.test.ts in an app that did not install the optional
// @electric-sql/pglite: the embedded database must say what to install. Prints one JSON line.
import { createEmbeddedDb } from "runledger/store";

try {
  const db = await createEmbeddedDb();
  await db.$runledger.close();
  process.stdout.write(`${JSON.stringify({ opened: true })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ name: error.name, code: error.code, message: error.message })}\n`);
}
