#!/usr/bin/env bash
# Installs the npm packages of the web package in directory $1 from its lockfile, when
# node_modules is missing or older than the lockfile. Several test scripts call this at once
# (the tests run in parallel), and `npm ci` starts by deleting node_modules, so one install runs
# at a time under a lock and the others then find it done.
set -euo pipefail
cd "$1"
exec 9>.npm-ci.lock
flock 9
stamp=node_modules/.montage-lock-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
