// Type-checks every ```ts block of README.md, so the documented API cannot drift from the code.
// Each block becomes a module of its own under .scratch/readme/ (gitignored); a block that starts
// with a `// name.ts` comment is written under that name, so the others can import it as the
// README shows (`./jobs.ts`). The prelude declares the few identifiers blocks use without
// defining them.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { ROOT, run } from "./support/processes.ts";

const SCRATCH = join(ROOT, ".scratch", "readme");

const PRELUDE = `import type { RunledgerDb } from "runledger/store";

declare global {
  /** An open handle, as \`createDb(process.env.DATABASE_URL!)\` returns. */
  const db: RunledgerDb;
  /** The application's own mail function, called by the README's email handler. */
  function sendEmail(to: string, subject: string, options: { signal: AbortSignal }): Promise<void>;
}

export {};
`;

const TSCONFIG = {
  extends: "../../tsconfig.json",
  compilerOptions: { noEmit: true },
  include: ["*.ts"],
};

interface Block {
  file: string;
  line: number;
  code: string;
}

/** The README's ```ts blocks with the line each starts on. */
function readmeBlocks(): Block[] {
  const lines = readFileSync(join(ROOT, "README.md"), "utf8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== "```ts") continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== "```") end++;
    const code = lines.slice(start, end).join("\n");
    const named = /^\/\/ ([a-z][\w-]*\.ts)\b/.exec(code)?.[1];
    blocks.push({ file: named ?? `block-${blocks.length + 1}.ts`, line: start + 1, code: `${code}\n` });
    i = end;
  }
  return blocks;
}

afterAll(() => rmSync(SCRATCH, { recursive: true, force: true }));

it("type-checks every TypeScript block in README.md", async () => {
  const blocks = readmeBlocks();
  expect(blocks.length).toBeGreaterThanOrEqual(8);
  expect(new Set(blocks.map((b) => b.file)).size).toBe(blocks.length);

  rmSync(SCRATCH, { recursive: true, force: true });
  mkdirSync(SCRATCH, { recursive: true });
  writeFileSync(join(SCRATCH, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
  writeFileSync(join(SCRATCH, "prelude.d.ts"), PRELUDE);
  for (const block of blocks) writeFileSync(join(SCRATCH, block.file), block.code);

  const result = await run(join(ROOT, "node_modules", ".bin", "tsc"), [
    "-p",
    join(SCRATCH, "tsconfig.json"),
    "--noEmit",
  ]);
  const where = blocks.map((b) => `${b.file} is the block at README.md line ${b.line}`).join("\n");
  expect(result.code, `${result.stdout}${result.stderr}\n${where}`).toBe(0);
}, 60_000);
