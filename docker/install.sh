#!/bin/sh
# The image's install steps, also run by the test suite against its own environment:
# the pinned requirements, then the project itself without touching them.
# usage: docker/install.sh PYTHON PROJECT_DIR
set -eu
PY="${1:-python3}"
SRC="${2:-.}"
"$PY" -m pip install --no-cache-dir -r "$SRC/docker/requirements.txt"
"$PY" -m pip install --no-cache-dir --no-deps "$SRC"
"$PY" -m pip check
