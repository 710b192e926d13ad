#!/usr/bin/env bash
# The recovery phase of the agent recipe (docs/agent-recipe.md, "Recovery phase"): a new CMA-ES from a trained
# controller whose training episodes run their full 1,000 steps (`--max_idle_steps 0`).  Why: the trained
# agents lose their mean to tracks where the car leaves the road at speed and then sits in the grass for the
# rest of the episode; with training episodes cut after 50 steps without a new tile, sitting and driving back
# earned the same fitness, so CMA-ES never saw a recovery pay.  V and M are the base run's, unchanged.
#   1. base: V, M and BASE_PARAMS copied from BASE_HOME (by default the first run's committed snapshot)
#   2. CMA-ES from BASE_PARAMS: 16 candidates x 8 full-length episodes, sigma 0.04; the mean scored on 64
#      held-out tracks every 4 generations (32 proved too few to pick an agent by)
# Re-running resumes, and every SNAPSHOT_EVERY generations the run is copied into runs/agent-recovery/
# (commit it): on a new machine the same command restores it into an empty $WORLD_MODELS_HOME and continues.
#   WORLD_MODELS_HOME=~/wm-recovery bash scripts/train-agent-recovery.sh
set -euo pipefail
main() {  # read whole before it runs, so editing this file cannot derail a running copy
export WORLD_MODELS_HOME="${WORLD_MODELS_HOME:-$HOME/wm-recovery}"
BASE_HOME="${BASE_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/runs/agent-2core}"
BASE_PARAMS="${BASE_PARAMS:-phase2-best-params.npy}"  # relative to BASE_HOME, or an absolute path
GENERATIONS="${GENERATIONS:-40}"
SNAPSHOT_EVERY="${SNAPSHOT_EVERY:-4}"
RUN_NAME=agent-recovery
source "$(dirname "${BASH_SOURCE[0]}")/run-lib.sh"

stage base "echo 0" -- copy_base "$BASE_HOME" "$BASE_PARAMS"
# From the tree's root: --init_from names a file there, the same string on any machine.
cma "$GENERATIONS" --popsize 16 --rollouts 8 --sigma 0.04 --seed 4 --init_from base-params.npy \
  --max_idle_steps 0 --eval_every 4 --eval_episodes 64
}
main "$@"
