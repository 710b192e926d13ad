#!/usr/bin/env bash
# Install a pretrained agent (V, M, controller) into the artifact tree ($WORLD_MODELS_HOME or
# ~/world-models-experiments), after checking the archive's pinned SHA-256 and every sum in its manifest.
#   bash pretrained.sh                      # $WORLD_MODELS_PRETRAINED, else the agent shipped in pretrained/
#                                           # (offline, pinned hash), else s3://world-models/pretrained/...
#   bash pretrained.sh https://host/agent.tar.gz --sha256 HEX   # or s3://bucket/key.tar.gz, ./agent.tar.gz
# Without a --sha256 pin only the archive's internal consistency can be checked, not where it came from.
# Nothing is unpacked unless every check passes.
set -euo pipefail
PYTHON="${PYTHON:-python3}"
if [ -n "${VIRTUAL_ENV:-}" ]; then PYTHON=python; fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$repo/.venv/bin/python" ]; then PYTHON="$repo/.venv/bin/python"; fi
exec "$PYTHON" -m worldmodels.pretrained install "$@"
