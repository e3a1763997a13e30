import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { COMMANDS, main } from "../../src/cli/index.ts";
import type { Output } from "../../src/cli/output.ts";
import { createDb, inspectSchema, queryRows } from "../../src/store/index.ts";
import { withDatabase } from "../../src/testing/server.ts";
import { useTestDatabase } from "../support/db.ts";
import { ledgerCounts } from "../support/factories.ts";
import { parsed, runCli } from "./support.ts";

const { db, url } = await useTestDatabase();

/** A URL nothing listens on: a command that connects fails on it. */
const NOWHERE = "postgres://postgres@127.0.0.1:1/nowhere";

function buffer(): Output & { stdout: string; stderr: string } {
  const out = {
    stdout: "",
    stderr: "",
    width: 80,
    write: (text: string) => {
      out.stdout += text;
    },
    error: (text: string) => {
      out.stderr += text;
    },
  };
  return out;
}

describe("runledger usage", { timeout: 120_000 }, () => {
  it("--help of every command prints its usage without connecting (exit 0)", async () => {
    for (const command of COMMANDS) {
      const out = buffer();
      const code = await main([...command.name.split(" "), "--help", "--database-url", NOWHERE], out);
      expect({ command: command.name, code, stderr: out.stderr }).toEqual({
        command: command.name,
        code: 0,
        stderr: "",
      });
      expect(out.stdout).toContain(`usage: runledger ${command.name}`);
    }
    const out = buffer();
    expect(await main(["--help"], out)).toBe(0);
    for (const command of COMMANDS) expect(out.stdout).toContain(command.name);
  });

  it("a group without its subcommand lists the group's commands and exits 2", async () => {
    const out = buffer();
    expect(await main(["jobs"], out)).toBe(2);
    expect(out.stderr).toContain("jobs list");
    expect(out.stderr).toContain("jobs cancel");
    expect(out.stderr).not.toContain("runs list");
  });

  it("migrate --help runs no DDL on an uninitialized database (child process)", async () => {
    const name = `rl_cli_empty_${process.pid}`;
    await db.execute(sql.raw(`create database ${name}`));
    const emptyUrl = withDatabase(url, name);
    const empty = createDb(emptyUrl, { max: 1 });
    afterAll(async () => {
      await empty.$runledger.close();
      await db.execute(sql.raw(`drop database if exists ${name} with (force)`));
    });
    const schemaExists = async () =>
      (
        await queryRows<{ n: number }>(
          empty,
          sql`select count(*)::int as n from pg_namespace where nspname = 'runledger'`,
        )
      )[0]!.n === 1;

    const help = await runCli(emptyUrl, ["migrate", "--help"]);
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toContain("--dry-run");
    expect(await schemaExists()).toBe(false);

    const check = await runCli(emptyUrl, ["migrate", "--check", "--json"]);
    expect(check.code).toBe(1);
    const { bundled } = await inspectSchema(db);
    expect(parsed(check)).toEqual({ state: "uninitialized", bundled, applied: 0, pending: bundled, ok: false });

    const dryRun = await runCli(emptyUrl, ["migrate", "--dry-run"]);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toContain("-- 0000_baseline");
    expect(dryRun.stdout).toContain('CREATE SCHEMA IF NOT EXISTS "runledger"');
    expect(await schemaExists()).toBe(false);

    const applied = await runCli(emptyUrl, ["migrate", "--json"]);
    expect(applied.code).toBe(0);
    expect(parsed(applied)).toEqual({ state: "current", bundled, applied: bundled, pending: 0, appliedNow: bundled });
    expect(await schemaExists()).toBe(true);
    expect((await runCli(emptyUrl, ["migrate", "--check"])).code).toBe(0);
  });

  it("without a database URL: a clear message, exit 2", async () => {
    const result = await runCli("", ["status"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("set DATABASE_URL or pass --database-url");
    expect(result.stdout).toBe("");
  });

  it("an unknown flag, a malformed id or a bad value: a clear message, exit 2, nothing changed", async () => {
    const before = await ledgerCounts(db);
    const unknown = await runCli(url, ["jobs", "cancel", "--status", "PENDING", "--yes", "--everything"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--everything'");
    const malformed = await runCli(url, ["jobs", "cancel", "not-a-uuid", "--json"]);
    expect(malformed.code).toBe(2);
    expect(JSON.parse(malformed.stderr)).toEqual({
      error: { code: "usage", message: '"not-a-uuid" is not a job id (a UUID)' },
    });
    const badStatus = await runCli(url, ["jobs", "cancel", "--status", "DONE", "--yes"]);
    expect(badStatus.code).toBe(2);
    expect(badStatus.stderr).toContain("--status must be one of PENDING, LEASED");
    expect(await ledgerCounts(db)).toEqual(before);
  });

  it("--version and an unknown command", async () => {
    const version = await runCli(url, ["--version"]);
    expect(version).toMatchObject({ code: 0, stdout: "runledger 0.1.0\n" });
    const unknown = await runCli(url, ["jobz"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "jobz"');
  });
});
