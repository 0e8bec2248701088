#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain: ffmpeg, for the media crate's
# video-frame tests (without it those tests check the `not_supported` answer instead).
# Idempotent: does nothing when everything is present. Needs root (or sudo) for apt-get.
set -euo pipefail

if command -v ffmpeg >/dev/null 2>&1; then
    echo "install-test-deps: ffmpeg present ($(command -v ffmpeg))"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-test-deps: ffmpeg missing and not root; video tests will check not_supported" >&2
        exit 0
    fi
fi

echo "install-test-deps: installing ffmpeg"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
ffmpeg -version | head -n 1
