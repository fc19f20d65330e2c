#!/usr/bin/env bash
# Build NiftyReg's command-line tools (reg_aladin, reg_f3d, reg_transform, reg_resample) from the
# PyPI `niftyreg` source package into CACHE_DIR/niftyreg-<version>, outside the clone, and print
# the folder holding the binaries. A second run finds the cached build and returns at once.
#
#   envs/build-niftyreg.sh CACHE_DIR          (PYTHON=... picks the interpreter whose pip builds)
#
# The sdist builds with scikit-build; recent CMake refuses its old cmake_minimum_required unless
# CMAKE_POLICY_VERSION_MINIMUM is set. The build takes about 4 minutes and needs g++.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 CACHE_DIR" >&2
    exit 2
fi
CACHE_DIR=$1
VERSION=${NIFTYREG_VERSION:-1.5.70rc1}
PY=${PYTHON:-python3}
DEST="$CACHE_DIR/niftyreg-$VERSION"
BIN="$DEST/niftyreg/bin"
TOOLS="reg_aladin reg_f3d reg_transform reg_resample"

complete() {
    for t in $TOOLS; do [ -x "$1/$t" ] || return 1; done
}

if complete "$BIN"; then
    echo "$BIN"
    exit 0
fi

command -v g++ >/dev/null || { echo "build-niftyreg: g++ is needed to build NiftyReg" >&2; exit 1; }
mkdir -p "$CACHE_DIR"
# Build into a temporary folder next to the destination and rename at the end, so an interrupted
# build never looks like a finished one.
TMP=$(mktemp -d "$CACHE_DIR/.niftyreg-$VERSION.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo "build-niftyreg: building niftyreg==$VERSION (a few minutes)" >&2
CMAKE_POLICY_VERSION_MINIMUM=3.5 "$PY" -m pip install --no-deps --no-cache-dir --quiet \
    --target "$TMP" "niftyreg==$VERSION" >&2
complete "$TMP/niftyreg/bin" || { echo "build-niftyreg: build finished without $TOOLS" >&2; exit 1; }
rm -rf "$DEST"
mv "$TMP" "$DEST"
trap - EXIT
echo "$BIN"
