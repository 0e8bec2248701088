// What a packed web package holds: its package.json's entry points, a README and LICENSE-free
// metadata that says Apache-2.0, both built halves with their .d.ts, no tests or configs, and
// every source map's `sources` inside the tarball (maps that point at unshipped files mislead
// debuggers). Usage: node contents.mjs PACKAGE.tgz
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";

const tgz = process.argv[2];
const dir = mkdtempSync(join(tmpdir(), "pack-contents-"));
const fail = (msg) => {
  console.error(`pack test: ${tgz}: ${msg}`);
  process.exit(1);
};
try {
  execFileSync("tar", ["-xzf", tgz, "-C", dir]);
  const root = join(dir, "package");
  const files = execFileSync("tar", ["-tzf", tgz], { encoding: "utf8" })
    .split("\n")
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ""));
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  if (pkg.license !== "Apache-2.0") fail(`license is ${pkg.license}, not the workspace's Apache-2.0`);
  if (pkg.sideEffects !== false) fail("sideEffects is not false");
  if (!pkg.repository?.url) fail("no repository");
  const entry = pkg.exports?.["."];
  const wanted = [
    "README.md",
    "dist/cjs/package.json",
    entry?.import?.types,
    entry?.import?.default,
    entry?.require?.types,
    entry?.require?.default,
    pkg.main,
    pkg.types,
  ];
  for (const f of wanted) {
    if (typeof f !== "string") fail(`package.json lacks an entry point (${JSON.stringify(pkg.exports)})`);
    if (!existsSync(join(root, f))) fail(`${f} is not in the tarball`);
  }
  if (JSON.parse(readFileSync(join(root, "dist/cjs/package.json"), "utf8")).type !== "commonjs") {
    fail("dist/cjs/package.json does not say commonjs");
  }
  const stray = files.filter((f) => /(^|\/)(test|node_modules)\//.test(f) || /(^|\/)tsconfig.*\.json$/.test(f) || /\.test\./.test(f));
  if (stray.length > 0) fail(`ships files an app doesn't need: ${stray.join(", ")}`);
  let maps = 0;
  for (const f of files.filter((f) => f.endsWith(".map"))) {
    maps++;
    const map = JSON.parse(readFileSync(join(root, f), "utf8"));
    for (const s of map.sources) {
      const target = resolve(dirname(join(root, f)), map.sourceRoot ?? "", s);
      if (!existsSync(target)) fail(`${f} points at ${relative(root, target)}, which is not shipped`);
    }
  }
  if (maps === 0) fail("no source maps (expected .js.map and .d.ts.map next to the output)");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
