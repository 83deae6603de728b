#!/usr/bin/env bash
# Install what tests/test_mirador.py needs: Debian's chromium (apt) and Mirador 3 and 4 (npm).
#
#   tests/browser/setup.sh        # prints the node_modules folder holding mirador3/ and mirador4/
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
stamp=$(sha256sum "$here/package.json" | cut -d' ' -f1)
if [ "$(cat "$cache/.installed" 2>/dev/null)" != "$stamp" ] \
    || [ ! -f "$cache/node_modules/mirador3/dist/mirador.min.js" ] \
    || [ ! -f "$cache/node_modules/mirador4/dist/mirador.min.js" ]; then
    echo "setup.sh: installing Mirador 3 and 4 with npm into $cache" >&2
    rm -f "$cache/.installed"
    cp "$here/package.json" "$cache/package.json"
    # scripts off: nothing from the registry runs here; only the two dist files are used
    (cd "$cache" && npm install --no-audit --no-fund --no-package-lock --ignore-scripts --legacy-peer-deps >&2)
    echo "$stamp" >"$cache/.installed"
fi
echo "$cache/node_modules"
