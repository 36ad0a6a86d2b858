/** Suite discovery shared by bench/run.ts and bench/gpu/run.ts. */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * The `suite` exports of the `*.bench.ts` files in `dir`, in file-name order: those named in
 * `names`, or all when it is empty. Throws, prefixed by `label`, naming any unknown name.
 */
export async function loadSuites<S extends { name: string }>(dir: string, names: readonly string[], label: string): Promise<S[]> {
  const files = readdirSync(dir).filter((f) => f.endsWith(".bench.ts")).sort();
  const suites: S[] = [];
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as { suite: S };
    if (names.length === 0 || names.includes(mod.suite.name)) suites.push(mod.suite);
  }
  const unknown = names.filter((n) => !suites.some((s) => s.name === n));
  if (unknown.length) throw new Error(`${label}: unknown suite(s) ${unknown.join(", ")}; have ${files.join(", ")}`);
  return suites;
}
