#!/usr/bin/env bash
# Builds the demo editor page (web/app/src + the @montage/client sources it imports) into
# crates/server/webapp — or into the directory given as $1 — as three files: index.html, app.js,
# app.css. `montage serve` compiles that bundle into the binary (crates/server/src/gateway/webapp.rs;
# it lives in the server crate so the crate is complete when packaged),
# so the bundle is committed: after changing web/app/src or web/client/src run this script and
# commit crates/server/webapp (web/scripts/test.sh fails while the committed bundle is stale).
# Installs web/app's npm packages from its lockfile when needed (esbuild, TypeScript).
set -euo pipefail
app="$(cd "$(dirname "$0")/../app" && pwd)"
out="${1:-$app/../../crates/server/webapp}"
cd "$app"

bash "$app/../scripts/npm-ci.sh" "$app"

npx --no-install tsc -p tsconfig.json
mkdir -p "$out"
# Deterministic output (no timestamps, no absolute paths), so a rebuild can be compared with the
# committed bundle byte for byte.
npx --no-install esbuild src/main.ts --bundle --format=esm --target=es2022 \
  --legal-comments=none --charset=utf8 --log-level=warning --outfile="$out/app.js"
cp src/index.html "$out/index.html"
cp src/app.css "$out/app.css"
