#!/usr/bin/env bash
# Packs @montage/client as `npm publish` would (`npm pack`, whose `prepack` builds it), installs
# the tarball into a scratch project in a temporary directory, and uses it the ways an app
# would: `import` from an .mjs file, `require` from a .cjs file (each applies an edit and builds
# a MontageClient), and a strict TypeScript file type-checked against the installed .d.ts under
# both `node16` and `bundler` module resolution. Also checks the tarball's contents: the built
# halves, the README, no tests, and every source map's sources shipped. The tarball's
# dependencies (@noble/ciphers and @noble/hashes, for encrypted sessions; @bufbuild/protobuf,
# for binary frames) come from npm's cache where web/client's `npm ci` put them; their registry
# metadata, which `npm ci` does not fetch, from the registry on a fresh machine
# (`--prefer-offline`). tsc is the client's own
# (web/client/node_modules).
# Then the same for @montage/react, installed with the client's tarball and React (its peers;
# React comes from npm's cache, filled by web/react's `npm ci`): server-side rendering with the
# hooks from .mjs and .cjs, and strict types.
# web/scripts/test.sh runs this; it prints "pack test: … ok" per package when everything passed.
set -euo pipefail
scripts="$(cd "$(dirname "$0")" && pwd)"
client="$scripts/../client"
bash "$scripts/npm-ci.sh" "$client"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Packs the package in $1 into $tmp and checks the tarball; prints its path.
pack() {
  # `npm pack` runs prepack (the build): its output goes to stderr, the JSON report to stdout.
  if ! (cd "$1" && npm pack --pack-destination "$tmp" --json --loglevel=error) >"$tmp/pack.json" 2>"$tmp/pack.log"; then
    cat "$tmp/pack.log" >&2
    exit 1
  fi
  local tarball
  tarball="$tmp/$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[0].filename)' "$tmp/pack.json")"
  node "$scripts/pack-test/contents.mjs" "$tarball"
  echo "$tarball"
}
tarball="$(pack "$client")"

proj="$tmp/app"
mkdir -p "$proj"
cp "$scripts"/pack-test/client/* "$proj/"
cd "$proj"
npm install --no-audit --no-fund --loglevel=error --prefer-offline "$tarball" >/dev/null
node esm.mjs
node cjs.cjs
tsc="$client/node_modules/typescript/bin/tsc"
node "$tsc" -p tsconfig.node16.json
node "$tsc" -p tsconfig.bundler.json
echo "pack test: @montage/client (ESM import, CommonJS require, strict TypeScript with node16 and bundler resolution) ok"

react="$scripts/../react"
bash "$scripts/npm-ci.sh" "$react"
# web/react builds against the client's dist, which packing the client just built.
react_tarball="$(pack "$react")"
# The versions web/react develops against, from its lockfile.
pinned() { node -p "require('$react/package-lock.json').packages['node_modules/$1'].version"; }
proj="$tmp/react-app"
mkdir -p "$proj"
cp "$scripts"/pack-test/react/* "$proj/"
cd "$proj"
npm install --no-audit --no-fund --loglevel=error --prefer-offline "$tarball" "$react_tarball" \
  "react@$(pinned react)" "react-dom@$(pinned react-dom)" "@types/react@$(pinned @types/react)" >/dev/null
node esm.mjs
node cjs.cjs
node "$tsc" -p tsconfig.node16.json
node "$tsc" -p tsconfig.bundler.json
echo "pack test: @montage/react (ESM import, CommonJS require, strict TypeScript with node16 and bundler resolution) ok"
