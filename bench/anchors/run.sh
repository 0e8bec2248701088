#!/usr/bin/env bash
# Raise the open-file limit (root may raise the hard limit too; the server child inherits it),
# then run the idle harness with room for 50k clients' objects in this process's heap.
#   bench/anchors/run.sh sharedb|hocuspocus N [--idle-secs 30]
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund
if ! ulimit -n 200000 2>/dev/null; then
  # Raising the hard limit needs CAP_SYS_RESOURCE, which a container's root may lack.
  ulimit -n "$(ulimit -Hn)"
  echo "run.sh: could not raise the open-file limit to 200000; it is $(ulimit -n)," \
    "so at most about $(( $(ulimit -n) - 100 )) connections" >&2
fi
exec node --max-old-space-size=8192 idle.mjs "$@"
