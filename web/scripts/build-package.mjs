// Builds the web package in the current directory for publishing, with tsc alone (no bundler):
// dist/esm from tsconfig.json and dist/cjs from tsconfig.cjs.json, each with its .d.ts files
// and source maps (the maps point at src/, which the package ships). A package.json saying
// {"type":"commonjs"} in dist/cjs makes Node and TypeScript read that half as CommonJS although
// the package itself is "type": "module". Run as `npm run build` (and by `npm pack` / `npm
// publish` through `prepack`).
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const tsc = createRequire(`${process.cwd()}/`).resolve("typescript/bin/tsc");
rmSync("dist", { recursive: true, force: true });
for (const project of ["tsconfig.json", "tsconfig.cjs.json"]) {
  execFileSync(process.execPath, [tsc, "-p", project], { stdio: "inherit" });
}
writeFileSync("dist/cjs/package.json", '{\n  "type": "commonjs"\n}\n');
