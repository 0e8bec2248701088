#!/usr/bin/env bash
# The TypeScript side of tests whose other side is the Rust SDK against a real server
# (web/client/interop, vitest.interop.config.ts): crates/cli/tests/it/web.rs starts the server
# and the Rust client and passes what this side needs in the environment (MONTAGE_WS_URL,
# MONTAGE_TOKEN, MONTAGE_SESSION, MONTAGE_SESSION_KEY, MONTAGE_EXPECT). Arguments pick the test
# files (vitest filters): `interop.sh encrypted`, `interop.sh binary`; each needs its own side.
set -euo pipefail
scripts="$(cd "$(dirname "$0")" && pwd)"
cd "$scripts/../client"
bash "$scripts/npm-ci.sh" .
NO_COLOR=1 npx --no-install vitest run --config vitest.interop.config.ts "$@"
