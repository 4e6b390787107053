#!/usr/bin/env bash
# The README's test command (and what .ci/run runs): installs what the tests need, then runs them.
# Extra arguments go to pytest:  bash scripts/test.sh tests/service -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the tests use: ffmpeg, a throwaway PostgreSQL, the GStreamer RTSP server, Chromium and CJK fonts for the web UI.
packages=(
    ffmpeg postgresql python3-gi gir1.2-gst-rtsp-server-1.0
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
    chromium fonts-noto-cjk
)
# python3 -m venv needs ensurepip, which Debian ships separately.
python3 -c 'import ensurepip' 2>/dev/null || packages+=(python3-venv)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" </dev/null
    else
        echo "missing Debian packages (tests that need them will skip): ${missing[*]}" >&2
    fi
fi

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q -c constraints.txt -e '.[dev]'
exec .venv/bin/pytest -q "$@"
