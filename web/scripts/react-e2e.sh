#!/usr/bin/env bash
# Runs @montage/react's Chromium test (web/react/test/e2e) against a running `montage serve
# --dev` at $MONTAGE_URL: bundles the test page (React + the hooks, from the sources of both
# packages, so no build is needed) with esbuild into a temporary directory, then drives two
# users' pages with playwright-core and Debian's /usr/bin/chromium. Screenshots land in
# web/react/test-results. crates/cli/tests/it/web.rs starts the real binary and calls this.
set -euo pipefail
scripts="$(cd "$(dirname "$0")" && pwd)"
cd "$scripts/../react"
: "${MONTAGE_URL:?set MONTAGE_URL to the server, e.g. http://127.0.0.1:7070}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "react-e2e: no Chromium at $chromium (scripts/install-test-deps.sh installs Debian's)" >&2
  exit 1
fi

bash "$scripts/npm-ci.sh" .

page="$(mktemp -d)"
trap 'rm -rf "$page"' EXIT
cp test/e2e/index.html "$page/"
# tsconfig.test.json maps @montage/react and @montage/client to their sources.
npx --no-install esbuild test/e2e/page.tsx --bundle --format=esm --target=es2022 --jsx=automatic \
  --tsconfig=tsconfig.test.json --define:process.env.NODE_ENV='"production"' \
  --log-level=warning --outfile="$page/page.js"
PAGE_DIR="$page" node test/e2e/e2e.mjs
