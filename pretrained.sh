#!/usr/bin/env bash
# Download a pretrained agent (V, M, controller), verify every SHA-256 in its manifest, and unpack it
# into the artifact tree ($WORLD_MODELS_HOME or ~/world-models-experiments).
#   bash pretrained.sh                      # from $WORLD_MODELS_PRETRAINED, default below
#   bash pretrained.sh https://host/agent.tar.gz | s3://bucket/key.tar.gz | ./agent.tar.gz
# Default source: s3://world-models/pretrained/worldmodels-agent.tar.gz (your bucket's exported agent;
# make one with `python -m worldmodels.pretrained export`).  Nothing is unpacked unless all sums match.
set -euo pipefail
PYTHON="${PYTHON:-python3}"
if [ -n "${VIRTUAL_ENV:-}" ]; then PYTHON=python; fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$repo/.venv/bin/python" ]; then PYTHON="$repo/.venv/bin/python"; fi
exec "$PYTHON" -m worldmodels.pretrained install "$@"
