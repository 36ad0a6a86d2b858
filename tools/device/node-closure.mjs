// node tools/device/node-closure.mjs NODE_MODULES PACKAGE...
//
// Prints, one per line, the directories (relative to NODE_MODULES) of the named packages and
// of every package they need at run time: dependencies, plus the optional and peer
// dependencies that are installed (esbuild's and rolldown's platform binaries are optional
// dependencies). Resolution follows Node's: a package's own node_modules first, then the
// enclosing ones. Used by tools/device/pack.sh to ship only what the GPU check runs.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";

const [root, ...wanted] = process.argv.slice(2);
if (!root || wanted.length === 0) {
  console.error("usage: node tools/device/node-closure.mjs NODE_MODULES PACKAGE...");
  process.exit(2);
}

/** The directory of package `name` as seen from package directory `from` (or null). */
function resolve(name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, dir === root ? "" : "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dir === root || !dir.startsWith(root)) return null;
  }
}

const seen = new Set();
const missing = [];
const queue = wanted.map((name) => [name, root, true]);
while (queue.length > 0) {
  const [name, from, required] = queue.pop();
  const dir = resolve(name, from);
  if (dir === null) {
    if (required) missing.push(`${name} (needed from ${relative(root, from) || "the root"})`);
    continue;
  }
  if (seen.has(dir)) continue;
  seen.add(dir);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  for (const dep of Object.keys(pkg.dependencies ?? {})) queue.push([dep, dir, true]);
  for (const dep of Object.keys(pkg.optionalDependencies ?? {})) queue.push([dep, dir, false]);
  for (const dep of Object.keys(pkg.peerDependencies ?? {})) queue.push([dep, dir, false]);
}
if (missing.length > 0) {
  console.error(`node-closure: not installed: ${missing.join(", ")}`);
  process.exit(1);
}
for (const dir of [...seen].map((d) => relative(root, d)).sort()) console.log(dir);
