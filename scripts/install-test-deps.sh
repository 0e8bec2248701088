#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain and Node.js, from Debian's
# packages: ffmpeg (the media crate's video-frame tests; without it those tests check the
# `not_supported` answer instead) and Chromium (the demo page's Playwright test, driven by the
# npm package playwright-core 1.64.1, whose Chromium major is Debian's 156); and from PyPI,
# moto[server] 5.2.1, an S3-compatible server for the `--blob-url s3://…` test (which fails without it);
# and nats-server, which the scale-out test that restarts NATS runs privately (the shared NATS
# stays up).
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

if command -v moto_server >/dev/null 2>&1; then
    echo "install-test-deps: moto_server present ($(command -v moto_server))"
else
    echo "install-test-deps: installing moto[server] with pip"
    if command -v pip3 >/dev/null 2>&1; then PIP=(pip3); else PIP=(python3 -m pip); fi
    "${PIP[@]}" install --quiet 'moto[server]==5.2.1' || echo "install-test-deps: pip could not install moto[server]; the S3 test will fail" >&2
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi

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
if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
    echo "install-test-deps: nats-server present"
else
    missing+=(nats-server)
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
