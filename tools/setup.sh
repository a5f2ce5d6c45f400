#!/usr/bin/env bash
# Create .venv with the pinned environment. Idempotent; `make setup` only calls it when the
# lock file or pyproject changed, so a complete environment costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
    echo "hwcsp setup: Python 3.11 is required (the local torch 2.13.0 CPU wheel is built for it); got $("$PY" --version)" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# --no-deps: the lock file is complete; finn-plus 1.6.1 declares brevitas==0.13.0, which
# conflicts with torch 2.13 over setuptools, so pip's resolver must not see its metadata.
# (pip warns about every package missing from the machine's local mirrors: not an error)
quiet_pip() { .venv/bin/python -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
quiet_pip --no-deps -r requirements/lock.txt
quiet_pip --no-deps --no-build-isolation -e .

# Icarus Verilog (RTL tests), Yosys (hwcsp rtl's memory inventory, make area) and Fashion-MNIST from Debian.
apt_tool() {  # <command or file> <package> <what it is for>
    command -v "$1" >/dev/null 2>&1 && return 0
    [ -f "$1" ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "hwcsp setup: installing $2 (apt-get install $2)"
        apt-get install -y -q --no-install-recommends "$2" >/dev/null \
            || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "$2" >/dev/null; }
    else
        echo "hwcsp setup: $2 is missing; install it (e.g. 'sudo apt-get install $2') for $3" >&2
    fi
}
apt_tool iverilog iverilog "the RTL tests"
apt_tool yosys yosys "hwcsp rtl and make area"
# Fashion-MNIST (data only) for classifier training: hwcsp train MODEL --data fashion-mnist
apt_tool /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz dataset-fashion-mnist \
    "hwcsp train --data fashion-mnist" \
    || echo "hwcsp setup: dataset-fashion-mnist is not installed (only hwcsp train --data fashion-mnist needs it)" >&2
# Aerial tree crowns (data only: nothing of deepforest is imported) for python -m quant.data.treecrowns
.venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('deepforest') is None)" 2>/dev/null \
    || quiet_pip --no-deps deepforest==2.1.0 \
    || echo "hwcsp setup: deepforest 2.1.0 is not installed (only python -m quant.data.treecrowns needs it)" >&2
echo "hwcsp setup: environment ready in .venv"
