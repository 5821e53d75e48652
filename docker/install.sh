#!/bin/sh
# The image's install steps, also run by the test suite against its own environment:
# the pinned requirements (deps), then the project itself without touching them (project).
# usage: docker/install.sh PYTHON PROJECT_DIR [deps|project|all]
set -eu
PY="${1:-python3}"
SRC="${2:-.}"
PHASE="${3:-all}"
case "$PHASE" in
    deps|project|all) ;;
    *) echo "install.sh: invalid phase=$PHASE: expected deps, project or all" >&2; exit 2 ;;
esac
if [ "$PHASE" != project ]; then
    "$PY" -m pip install --no-cache-dir -r "$SRC/docker/requirements.txt"
fi
if [ "$PHASE" != deps ]; then
    "$PY" -m pip install --no-cache-dir --no-deps "$SRC"
    "$PY" -m pip check
fi
