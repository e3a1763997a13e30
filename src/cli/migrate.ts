import { inspectSchema, migrate, planMigrations } from "../store/index.ts";
import { COMMON_OPTIONS, type Command } from "./command.ts";
import { json, UsageError } from "./output.ts";

/** `runledger migrate`: apply, print (`--dry-run`) or check (`--check`) the bundled migrations. */
export const migrateCommand: Command = {
  name: "migrate",
  summary: "apply the bundled migrations (--dry-run prints the SQL, --check verifies)",
  usage: `usage: runledger migrate [--dry-run | --check] [--json] [--database-url URL]

Applies the bundled migrations in one transaction under an advisory lock (safe to run from many
processes at once: latecomers find nothing to do).
  --dry-run   print the SQL of the pending migrations, change nothing
  --check     change nothing; exit 0 when the schema is current, 1 otherwise
              (uninitialized, behind, ahead or diverged)

--json: {"state","bundled","applied","pending","appliedNow"} when applying;
        {"state","bundled","applied","pending","migrations":[{"tag","hash","statements"}]}
        with --dry-run; {"state","bundled","applied","pending","ok"} with --check.
`,
  options: { "dry-run": { type: "boolean" }, check: { type: "boolean" }, ...COMMON_OPTIONS },
  async run(ctx) {
    if (ctx.values["dry-run"] === true && ctx.values.check === true) {
      throw new UsageError("runledger migrate: --dry-run and --check do not go together");
    }
    const db = ctx.db();
    if (ctx.values["dry-run"] === true) {
      const { report, pending } = await planMigrations(db);
      if (ctx.json) {
        const { state, bundled, applied } = report;
        json(ctx.out, { state, bundled, applied, pending: report.pending, migrations: pending });
        return 0;
      }
      ctx.out.write(`-- runledger schema ${report.state}: ${pending.length} migration(s) would be applied\n`);
      for (const migration of pending) {
        ctx.out.write(`\n-- ${migration.tag} (sha256 ${migration.hash.slice(0, 12)})\n`);
        for (const statement of migration.statements) ctx.out.write(`${statement.trim()}\n`);
      }
      return 0;
    }
    if (ctx.values.check === true) {
      const report = await inspectSchema(db);
      const ok = report.state === "current";
      const { state, bundled, applied, pending } = report;
      if (ctx.json) json(ctx.out, { state, bundled, applied, pending, ok });
      else {
        ctx.out.write(
          `runledger schema ${report.state}: ${report.applied} applied, ${report.bundled} bundled, ${report.pending} pending\n`,
        );
      }
      return ok ? 0 : 1;
    }
    const before = await inspectSchema(db);
    // migrate() holds an advisory lock, so concurrent deploys wait and then find nothing to do.
    const after = await migrate(db);
    const appliedNow = Math.max(0, before.pending);
    if (ctx.json) {
      const { state, bundled, applied, pending } = after;
      json(ctx.out, { state, bundled, applied, pending, appliedNow });
    } else ctx.out.write(`runledger schema ${after.state}: ${appliedNow} applied now, ${after.bundled} bundled\n`);
    return 0;
  },
};
