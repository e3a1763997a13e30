#!/usr/bin/env node
// The `runledger` command. An installed package runs its build, dist/cli.js. A clone of the
// repository has no build until `npm run build`, so there it runs src/cli.ts through tsx (a
// development dependency): `npx runledger --help` works right after `npm ci`.
import { existsSync } from "node:fs";

const built = new URL("../dist/cli.js", import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  let register;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch {
    process.stderr.write("runledger: dist/cli.js is missing; run `npm run build` (or `npm ci` to install tsx).\n");
    process.exit(1);
  }
  register();
  await import(new URL("../src/cli.ts", import.meta.url).href);
}
