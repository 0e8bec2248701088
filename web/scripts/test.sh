#!/usr/bin/env bash
# Installs the web client's dev dependencies (from the lockfile) and runs its checks: the
# TypeScript type check, the vitest suite (shared OT vectors included), and the package as
# published (pack-test.sh: `npm pack`, installed into a scratch project, used from ESM, CommonJS
# and strict TypeScript); the same for @montage/react (web/react) with its type check and vitest
# suite; both API references (TypeDoc, warnings as errors) and the docs' TypeScript snippets
# (check-snippets.mjs: type-checked against the sources); then rebuilds the demo page (web/app)
# and fails if the committed bundle in crates/server/webapp, which montage serve compiles in,
# differs from what its sources build to. (react-e2e.sh, the hooks in Chromium, needs a running
# server: web.rs runs it.)
# Idempotent and quiet: `npm ci` runs only when node_modules is missing or older than the
# lockfile. Call from anywhere: web/scripts/test.sh
set -euo pipefail
scripts="$(cd "$(dirname "$0")" && pwd)"
cd "$scripts/../client"

bash "$scripts/npm-ci.sh" .

npx --no-install tsc -p tsconfig.json --noEmit
npx --no-install tsc -p tsconfig.test.json
NO_COLOR=1 npx --no-install vitest run
# The API reference (typedoc.json: warnings are errors, so a broken {@link} or an undocumented
# export fails here).
npx --no-install typedoc --logLevel Warn
echo "typedoc: @montage/client API reference in web/client/docs-api"
# Builds dist/esm and dist/cjs of both packages (prepack) and checks the tarballs an app would
# install.
bash "$scripts/pack-test.sh"

# @montage/react: type check (the package against the client's built .d.ts; the tests and the
# Chromium test page against both sources) and its vitest suite (hooks rendered in happy-dom).
cd "$scripts/../react"
bash "$scripts/npm-ci.sh" .
npx --no-install tsc -p tsconfig.json --noEmit
npx --no-install tsc -p tsconfig.test.json
NO_COLOR=1 npx --no-install vitest run
npx --no-install typedoc --logLevel Warn
echo "typedoc: @montage/react API reference in web/react/docs-api"

# Every ts/tsx/js block of the READMEs (and ts blocks of docs/) compiles against the sources.
node "$scripts/check-snippets.mjs"

# The page bundle compiled into montage serve must match its sources.
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
"$scripts/build-app.sh" "$fresh"
bundle="$scripts/../../crates/server/webapp"
if ! diff -r "$fresh" "$bundle" >/dev/null; then
  echo "crates/server/webapp is stale: run web/scripts/build-app.sh and commit crates/server/webapp" >&2
  diff -r "$fresh" "$bundle" | head -20 >&2
  exit 1
fi
echo "crates/server/webapp matches its sources"
