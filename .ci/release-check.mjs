#!/usr/bin/env node
// `npm run release:check`: what must hold before `npm publish`. Refuses a dirty git tree, builds,
// runs the whole test suite (which includes the packaged-consumer test, publint and attw), and
// shows what `npm publish` would upload. Exits non-zero at the first failing step.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

function fail(message) {
  console.error(`release:check: ${message}`);
  process.exit(1);
}

function gitStatus() {
  const result = spawnSync("git", ["status", "--porcelain", "--untracked-files=all"], { cwd: root, encoding: "utf8" });
  if (result.status !== 0) fail(`git status failed:\n${result.stderr}`);
  return result.stdout.trimEnd();
}

function step(command, args) {
  console.log(`\nrelease:check: ${command} ${args.join(" ")}`);
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit" });
  if (result.error) fail(`${command} could not start: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(" ")} failed (exit ${result.status ?? result.signal})`);
}

const dirty = gitStatus();
if (dirty !== "") fail(`the git tree is not clean; commit or stash first:\n${dirty}`);

const { name, version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const tag = `v${version}`;
const tagged = spawnSync("git", ["tag", "--points-at", "HEAD"], { cwd: root, encoding: "utf8" });
if (!tagged.stdout.split("\n").includes(tag)) {
  console.warn(`release:check: note: HEAD is not tagged ${tag} (did you run \`npm version\`?)`);
}

step("npm", ["run", "build"]);
step("npm", ["test"]);
step("npm", ["publish", "--dry-run"]);

const after = gitStatus();
if (after !== "") fail(`the checks left the git tree dirty:\n${after}`);
console.log(`\nrelease:check: ${name}@${version} is ready; publish with \`npm publish\`.`);
