#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain and Node.js, from Debian's
# packages: ffmpeg (the media crate's video-frame tests; without it those tests check the
# `not_supported` answer instead) and Chromium (the demo page's Playwright test, driven by the
# npm package playwright-core 1.64.1, whose Chromium major is Debian's 156).
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

missing=()
if command -v ffmpeg >/dev/null 2>&1; then
    echo "install-test-deps: ffmpeg present ($(command -v ffmpeg))"
else
    missing+=(ffmpeg)
fi
if [ -x /usr/bin/chromium ]; then
    echo "install-test-deps: chromium present ($(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium))"
else
    missing+=(chromium)
fi
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-test-deps: ${missing[*]} missing and not root; the tests that need them will fail or check not_supported" >&2
        exit 0
    fi
fi

echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v ffmpeg >/dev/null && ffmpeg -version | head -n 1
[ -x /usr/bin/chromium ] && /usr/bin/chromium --version
exit 0
