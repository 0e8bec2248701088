#!/usr/bin/env node
// Type-checks every TypeScript/JavaScript snippet of the docs, so a README cannot show code the
// packages no longer accept: the ```ts, ```tsx and ```js blocks of the web READMEs and the
// ```ts/```tsx blocks of docs/*.md (blocks with `file=`, docs/QUICKSTART.md's, are run by a
// Rust test instead). Each block becomes a module in a scratch directory, checked by one
// `tsc --strict` against the packages' sources (@montage/client, @montage/react mapped to
// src/index.ts: no build needed) and the installed `ws` and `react` types.
//
// Names a snippet takes from the app around it (`myBackend`, `render`, `client`, …) are
// declared in snippet-globals.d.ts; a block can add its own declarations in an HTML comment on
// the lines right before it, invisible on GitHub and npm:
//   <!-- snippet-declare: declare const wireOps: unknown; -->
// Code that is deliberately not TypeScript (shell lines, pseudo-code) is tagged ```sh/```text.
// Needs web/client and web/react node_modules (test.sh installs them first).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const scripts = dirname(fileURLToPath(import.meta.url));
const web = resolve(scripts, "..");
const repo = resolve(web, "..");
const docs = join(repo, "docs");

const sources = [
  ...["web/README.md", "web/client/README.md", "web/react/README.md"].map((f) => ({ file: f, langs: ["ts", "tsx", "js"] })),
  ...readdirSync(docs)
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => ({ file: `docs/${f}`, langs: ["ts", "tsx"] })),
];

/** The checkable fenced blocks of one markdown file: {lang, line (of the first code line), code, declare}. */
function blocks(file, langs) {
  const lines = readFileSync(join(repo, file), "utf8").split("\n");
  const found = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)(.*)$/.exec(lines[i]);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    const [, lang, info] = open;
    if (langs.includes(lang) && !/\bfile=/.test(info)) {
      found.push({ lang, line: i + 2, code: lines.slice(i + 1, end).join("\n"), declare: declaration(lines, i) });
    }
    i = end;
  }
  return found;
}

/** The `<!-- snippet-declare: … -->` comment ending on the line before the fence at `fence`, joined into one line. */
function declaration(lines, fence) {
  if (fence === 0 || !lines[fence - 1].trimEnd().endsWith("-->")) return "";
  let start = fence - 1;
  while (start > 0 && !lines[start].includes("<!--")) start--;
  const text = lines.slice(start, fence).join(" ");
  const m = /<!--\s*snippet-declare:([\s\S]*)-->/.exec(text);
  return m ? m[1].trim() : "";
}

const scratch = mkdtempSync(join(tmpdir(), "montage-snippets-"));
try {
  const origin = new Map(); // scratch file name → markdown file and line of the block's first line
  let count = 0;
  for (const { file, langs } of sources) {
    for (const b of blocks(file, langs)) {
      const name = `${file.replace(/[/.]/g, "_")}_${b.line}.${b.lang}`;
      // Line 1: the block's declarations; the code from line 2, so an error maps back by one.
      // `export {}` makes every block a module: its names don't collide with other blocks' or
      // the shared globals, and top-level await is allowed.
      writeFileSync(join(scratch, name), `${b.declare}\n${b.code}\nexport {};\n`);
      origin.set(name, { file, line: b.line });
      count++;
    }
  }
  writeFileSync(
    join(scratch, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: "ES2022",
        module: "ESNext",
        moduleResolution: "Bundler", // reads the sources' "./x.js" imports as the .ts files
        lib: ["ES2022", "DOM", "DOM.Iterable"],
        jsx: "react-jsx",
        allowJs: true,
        checkJs: true,
        skipLibCheck: true,
        types: ["node"],
        typeRoots: [join(web, "react/node_modules/@types")],
        paths: {
          "@montage/client": [join(web, "client/src/index.ts")],
          "@montage/client/binary": [join(web, "client/src/binary.ts")],
          "@montage/react": [join(web, "react/src/index.ts")],
          ws: [join(web, "client/node_modules/@types/ws")],
          react: [join(web, "react/node_modules/@types/react")],
          "react/*": [join(web, "react/node_modules/@types/react/*")],
        },
      },
      files: [join(scripts, "snippet-globals.d.ts"), ...origin.keys()],
    }),
  );
  const tsc = join(web, "client/node_modules/typescript/bin/tsc");
  try {
    execFileSync(process.execPath, [tsc, "-p", scratch, "--pretty", "false"], { encoding: "utf8" });
  } catch (e) {
    // Point each error at the markdown line it comes from.
    const out = String(e.stdout || e.message).replace(/^(\S+?)\((\d+),(\d+)\)/gm, (all, path, line, col) => {
      const o = origin.get(relative(scratch, resolve(scratch, path)));
      return o ? `${o.file}:${o.line + Number(line) - 2}:${col}` : all;
    });
    console.error(`snippets: type errors in the docs' code blocks:\n${out}`);
    process.exit(1);
  }
  console.log(`snippets: ${count} blocks type-check`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
