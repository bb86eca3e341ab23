#!/usr/bin/env bash
# Screenshots of the acceptance report in both languages with headless Chromium (Debian's
# `chromium` package), to look at before QA signs: reports/acceptance/screenshot-{en,zh-TW}.png.
# Usage: scripts/report-screenshots.sh [REPORT_DIR]   (after `make verify`; not run by CI)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
DIR=${1:-reports/acceptance}
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || { echo "no chromium: apt-get install -y chromium" >&2; exit 2; }
[ -f "$DIR/acceptance.json" ] || { echo "no $DIR/acceptance.json: run make verify first" >&2; exit 2; }
for LANG_ in en zh-TW; do
    "$BIN/python" -m harness.verify.report "$DIR" --lang "$LANG_" --out "$DIR/index.$LANG_.html"
    PROFILE=$(mktemp -d)
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --user-data-dir="$PROFILE" \
        --hide-scrollbars --window-size=1280,4000 --screenshot="$PWD/$DIR/screenshot-$LANG_.png" \
        "file://$PWD/$DIR/index.$LANG_.html" 2>/dev/null
    rm -rf "$PROFILE"
    echo "$DIR/screenshot-$LANG_.png"
done
