import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const coreDir = fileURLToPath(new URL("../../src/core/", import.meta.url));
const files = (readdirSync(coreDir, { recursive: true }) as string[])
  .filter((file) => file.endsWith(".ts"))
  .map((file) => join(coreDir, file));
const ALLOWED_PACKAGES = new Set(["valibot", "croner", "uuidv7"]);

function specifiers(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/(?:^|\s)(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["']/g))
    found.push(match[1]!);
  for (const match of source.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g)) found.push(match[1]!);
  for (const match of source.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) found.push(match[1]!);
  return found;
}

describe("runledger/core boundaries", () => {
  it("finds the core sources", () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it.each(files.map((file) => [relative(coreDir, file), file]))(
    "%s imports only core files, valibot, croner and uuidv7",
    (_, file) => {
      for (const specifier of specifiers(readFileSync(file, "utf8"))) {
        if (specifier.startsWith(".")) {
          expect(specifier, "relative imports use .ts specifiers").toMatch(/\.ts$/);
          const target = resolve(dirname(file), specifier);
          expect(target.startsWith(coreDir) || `${target}${sep}` === coreDir, `${specifier} leaves src/core`).toBe(
            true,
          );
        } else {
          expect(ALLOWED_PACKAGES.has(specifier), `${specifier} is not allowed in core`).toBe(true);
        }
      }
    },
  );

  it("index.ts re-exports every core module", () => {
    const index = readFileSync(join(coreDir, "index.ts"), "utf8");
    const exported = new Set([...index.matchAll(/export \* from "\.\/([^"]+)"/g)].map((m) => m[1]!));
    const modules = files.map((file) => relative(coreDir, file).split(sep).join("/")).filter((f) => f !== "index.ts");
    expect([...exported].sort()).toEqual(modules.sort());
  });
});
