#!/usr/bin/env bash
# Installs the web client's dev dependencies (from the lockfile) and runs its checks: the
# TypeScript type check, the ESM build, and the vitest suite (shared OT vectors included).
# Idempotent and quiet: `npm ci` runs only when node_modules is missing or older than the
# lockfile. Call from anywhere: web/scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/../client"

stamp=node_modules/.montage-lock-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

npx --no-install tsc -p tsconfig.json --noEmit
npx --no-install tsc -p tsconfig.test.json
npx --no-install tsc -p tsconfig.json
NO_COLOR=1 npx --no-install vitest run
