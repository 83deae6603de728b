#!/usr/bin/env bash
# Install what tests/test_mirador.py needs: Debian's chromium (apt) and Mirador 3 and 4 (npm); with
# "uv", the Universal Viewer 4 (npm, uv/package.json) that tests/test_viewer_search.py needs.
#
#   tests/browser/setup.sh        # prints the node_modules folder holding mirador3/ and mirador4/
#   tests/browser/setup.sh uv     # prints the node_modules folder holding universalviewer/
#
# Idempotent: chromium is installed only when missing, and npm runs only when package.json changed.
# Mirador goes to $MIRADOR_CACHE (default ~/.cache/enricher-browser), outside the repository.
# The UMD builds (dist/mirador.min.js) bundle React and Material UI, so peer dependencies are skipped.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${MIRADOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/enricher-browser}
chromium=${MIRADOR_CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$chromium" ]; then
    echo "setup.sh: installing chromium with apt-get" >&2
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
fi

command -v npm >/dev/null || { echo "setup.sh: npm not found (apt-get install npm)" >&2; exit 1; }
mkdir -p "$cache"
package=$here/package.json
needed="mirador3/dist/mirador.min.js mirador4/dist/mirador.min.js"
if [ "${1:-}" = uv ]; then
    package=$here/uv/package.json cache=$cache/uv needed="universalviewer/dist/umd/UV.js"
    mkdir -p "$cache"
fi
missing=""
for file in $needed; do [ -f "$cache/node_modules/$file" ] || missing=$file; done
stamp=$(sha256sum "$package" | cut -d' ' -f1)
if [ "$(cat "$cache/.installed" 2>/dev/null)" != "$stamp" ] || [ -n "$missing" ]; then
    echo "setup.sh: installing $(basename "$(dirname "$package")")/package.json with npm into $cache" >&2
    rm -f "$cache/.installed"
    cp "$package" "$cache/package.json"
    # scripts off: nothing from the registry runs here; only the dist files are used
    (cd "$cache" && npm install --no-audit --no-fund --no-package-lock --ignore-scripts --legacy-peer-deps >&2)
    echo "$stamp" >"$cache/.installed"
fi
echo "$cache/node_modules"
