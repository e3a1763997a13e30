// Type-checks every ```ts block of README.md and llms.txt, so the documented API cannot drift from
// the code. Each block becomes a module of its own under .scratch/readme/ (gitignored); a block that starts
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
  extends: "../../../tsconfig.json",
  compilerOptions: { noEmit: true },
  include: ["*.ts"],
};

interface Block {
  file: string;
  line: number;
  code: string;
}

/** A document's ```ts blocks with the line each starts on. */
function tsBlocks(document: string): Block[] {
  const lines = readFileSync(join(ROOT, document), "utf8").split("\n");
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

/** Write the blocks of `document` into a directory of their own and run tsc over them. */
async function typecheck(document: string, blocks: Block[]): Promise<void> {
  const dir = join(SCRATCH, document.replace(/\W/g, "-"));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
  writeFileSync(join(dir, "prelude.d.ts"), PRELUDE);
  for (const block of blocks) writeFileSync(join(dir, block.file), block.code);

  const result = await run(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", join(dir, "tsconfig.json"), "--noEmit"]);
  const where = blocks.map((b) => `${b.file} is the block at ${document} line ${b.line}`).join("\n");
  expect(result.code, `${result.stdout}${result.stderr}\n${where}`).toBe(0);
}

it("type-checks every TypeScript block in README.md", async () => {
  const blocks = tsBlocks("README.md");
  expect(blocks.length).toBeGreaterThanOrEqual(8);
  expect(new Set(blocks.map((b) => b.file)).size).toBe(blocks.length);
  await typecheck("README.md", blocks);
}, 60_000);

it("type-checks every TypeScript block in llms.txt", async () => {
  const blocks = tsBlocks("llms.txt");
  expect(blocks.length).toBeGreaterThanOrEqual(2);
  await typecheck("llms.txt", blocks);
}, 60_000);
