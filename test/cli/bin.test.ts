// `npx runledger` from a clone: the package's bin is bin/runledger.js, which runs the build when
// there is one and otherwise src/cli.ts through tsx, so the command works before `npm run build`.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, run } from "../support/processes.ts";

const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
const scratch: string[] = [];

function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

describe("npx runledger in a fresh clone", () => {
  let clone: string;
  // npx keeps what it installs in its cache: a cache of the test's own, so nothing is shared.
  let env: NodeJS.ProcessEnv;

  beforeAll(() => {
    clone = scratchDir("runledger-clone-");
    // A clone's files: what git tracks (and new files it would track), without dist/.
    const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    for (const file of files.split("\n").filter(Boolean)) {
      if (!existsSync(join(ROOT, file))) continue; // deleted in the working tree
      mkdirSync(dirname(join(clone, file)), { recursive: true });
      cpSync(join(ROOT, file), join(clone, file));
    }
    // What `npm ci` installs, shared with this checkout instead of installed again.
    symlinkSync(join(ROOT, "node_modules"), join(clone, "node_modules"));
    env = { npm_config_cache: scratchDir("runledger-npm-cache-"), npm_config_update_notifier: "false" };
  });

  it("has no build, and `npx runledger --help` and `--version` still work", async () => {
    expect(existsSync(join(clone, "dist"))).toBe(false);
    const help = await run("npx", ["--offline", "runledger", "--help"], env, clone);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^usage: runledger <command>/);
    expect(help.stdout).toContain("migrate");
    const shown = await run("npx", ["--offline", "runledger", "--version"], env, clone);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout.trim()).toBe(`runledger ${version}`);
  }, 60_000);

  it("runs the build once there is one", async () => {
    const copy = scratchDir("runledger-built-");
    cpSync(join(clone, "bin"), join(copy, "bin"), { recursive: true });
    cpSync(join(clone, "package.json"), join(copy, "package.json"));
    mkdirSync(join(copy, "dist"));
    writeFileSync(join(copy, "dist", "cli.js"), `console.log("the build ran", process.argv.slice(2).join(" "));\n`);
    const result = await run(process.execPath, [join(copy, "bin", "runledger.js"), "status"], {}, copy);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe("the build ran status\n");
  });

  it("says what to run when there is neither a build nor tsx", async () => {
    const copy = scratchDir("runledger-bare-");
    cpSync(join(clone, "bin"), join(copy, "bin"), { recursive: true });
    cpSync(join(clone, "package.json"), join(copy, "package.json"));
    const result = await run(process.execPath, [join(copy, "bin", "runledger.js"), "--help"], {}, copy);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("run `npm run build`");
  });
});
