#!/usr/bin/env bash
# Runs the demo page's Playwright scripts (web/app/test) in Debian's Chromium against a running
# `montage serve --dev` at $MONTAGE_URL. `web/scripts/e2e.sh` runs the two-user editing test;
# `web/scripts/e2e.sh comments` the comments-and-invites one; `previews` the live previews of one
# user's own edits; `sharing` private sessions: the sessions list, the no-access panel, link access
# opened and closed in the share dialog, deletion; `history` version history: the History dialog
# (a typed version named, previewed and restored on both pages) and Undo taking the restore back;
# `notifications` the inbox: a mention counted live on the bell of a page in another session,
# listed, marked all read, and opening its session; `timeline` two people on a video timeline:
# a video added, playheads seen by the other, the frame at a playhead, split, drag and trim;
# `quality` "auto" previews through throttled downloads: the tier follows what the link carries;
# `encrypted` an end-to-end encrypted session: two people edit a picture (sealed in the page before
# it is uploaded, drawn from what each page opens) and comment through its `#key=` link; pages
# without the key (or with a wrong one) say why they can't read it, and a picture changed on its
# way is reported, not drawn.
# crates/cli/tests/it/web.rs starts the real binary and calls this. Screenshots: web/app/test-results.
set -euo pipefail
cd "$(dirname "$0")/../app"
: "${MONTAGE_URL:?set MONTAGE_URL to the server, e.g. http://127.0.0.1:7070}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "e2e: no Chromium at $chromium (scripts/install-test-deps.sh installs Debian's)" >&2
  exit 1
fi

bash ../scripts/npm-ci.sh .

case "${1:-editing}" in
  editing) node test/e2e.mjs ;;
  comments) node test/e2e-comments.mjs ;;
  previews) node test/e2e-previews.mjs ;;
  sharing) node test/e2e-sharing.mjs ;;
  history) node test/e2e-history.mjs ;;
  notifications) node test/e2e-notifications.mjs ;;
  timeline) node test/e2e-timeline.mjs ;;
  quality) node test/e2e-quality.mjs ;;
  encrypted) node test/e2e-encrypted.mjs ;;
  *) echo "usage: e2e.sh [editing|comments|previews|sharing|history|notifications|timeline|quality|encrypted]" >&2; exit 2 ;;
esac
