#!/usr/bin/env bash
# Raise the open-file limit (root may raise the hard limit too; the server child inherits it),
# then run the idle harness with room for 50k clients' objects in this process's heap — or,
# with `load`, the edit-load generator (load.mjs; it pins itself and its server child).
#   bench/anchors/run.sh sharedb|hocuspocus N [--idle-secs 30]
#   bench/anchors/run.sh load [--server sharedb|montage|both] [--sessions 100] [--clients 5] [--rate 5] [--duration 10]
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund
if ! ulimit -n 200000 2>/dev/null; then
  # Raising the hard limit needs CAP_SYS_RESOURCE, which a container's root may lack.
  ulimit -n "$(ulimit -Hn)"
  echo "run.sh: could not raise the open-file limit to 200000; it is $(ulimit -n)," \
    "so at most about $(( $(ulimit -n) - 100 )) connections" >&2
fi
if [ "${1:-}" = load ]; then
  shift
  exec node --max-old-space-size=8192 load.mjs "$@"
fi
exec node --max-old-space-size=8192 idle.mjs "$@"
