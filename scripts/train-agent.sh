#!/usr/bin/env bash
# The recipe of the shipped agent (docs/agent-recipe.md): every command, in order, on a 2-core box.
# Each finished stage is timed into $WORLD_MODELS_HOME/stages.csv (stage, seconds, env_steps), which
# `python -m worldmodels.learning_curve` adds to the CMA-ES curve.  Re-running resumes: finished stages
# are skipped and the running one continues where it stopped (CMA-ES after its last finished generation).
# Once M is trained, every SNAPSHOT_EVERY generations the run's state (stages.csv, V and M weights, the
# CMA-ES logs, its newest generation and best controller) is copied into $SNAPSHOT, a small artifact tree
# in the repository: commit it, and on a new machine the same command restores it into an empty
# $WORLD_MODELS_HOME and continues the CMA-ES run exactly (episodes and latent stats are not needed again).
# CMA-ES runs in phases, each a new CMA-ES warm-started from the previous phase's best evaluated mean:
# PHASE1 generations of 16 candidates x 4 episodes at sigma 0.1 (fast progress from zero); PHASE2 of 16 x 8
# at sigma 0.05 (less noise in the ranking, smaller steps: phase 1's held-out score had stopped rising);
# then 32 x 8 at sigma 0.04 (phase 2 flattened near 800 held-out: a larger population averages more
# candidates into each step of the mean).
#   WORLD_MODELS_HOME=~/wm-agent bash scripts/train-agent.sh            # GENERATIONS=200 in all by default
set -euo pipefail
main() {  # read whole before it runs, so editing this file cannot derail a running copy
export WORLD_MODELS_HOME="${WORLD_MODELS_HOME:-$HOME/world-models-experiments}"
GENERATIONS="${GENERATIONS:-200}"
PHASE1="${PHASE1:-35}"
PHASE2="${PHASE2:-34}"
RUN_NAME=agent-2core
source "$(dirname "${BASH_SOURCE[0]}")/run-lib.sh"

stage sampling "episode_frames random" -- python worldmodels/data/sample_policy.py --policy random --num_process "$NUM_PROCESS" \
  --total_episodes 300 --episode_length 1000
stage vae "echo 0" -- python worldmodels/vision/train_vae.py --load_model "$(resume vae-training)" --data local \
  --epochs 2 --learning_rate 0.001
stage latent_stats "echo 0" -- python worldmodels/data/sample_latent_stats.py --episode_start 0 --episodes 300 \
  --data local --dataset random
stage memory "echo 0" -- python worldmodels/memory/train_memory.py --load_model "$(resume memory-training)" \
  --epochs 40 --batch_size 20
# CMA-ES logs its own time and env steps per generation (control/rewards.log); re-running continues it.
end_phase() {  # end_phase N: keep phase N's best evaluated mean for the next phase, move its whole run aside
  local archive="$WORLD_MODELS_HOME/control-archive/$1-phase$1"
  if ! grep -q "^cma_phase$1," "$stages"; then
    cp "$WORLD_MODELS_HOME/control/best/best-params.npy" "$WORLD_MODELS_HOME/phase$1-best-params.npy"
    echo "cma_phase$1,0,0" >> "$stages"  # a marker: its time and env steps are in its own rewards.log
  fi
  if [ ! -d "$archive" ]; then  # the learning curve reads the archived phases in order, then control/
    mkdir -p "$(dirname "$archive")" && mv "$WORLD_MODELS_HOME/control" "$archive"
  fi
}
# From the tree's root: --init_from names a file there, the same string on any machine.
grep -q "^cma_phase1," "$stages" || cma "$PHASE1" --popsize 16 --rollouts 4 --sigma 0.1
end_phase 1
grep -q "^cma_phase2," "$stages" || cma "$PHASE2" --popsize 16 --rollouts 8 --sigma 0.05 --init_from phase1-best-params.npy
end_phase 2
cma "$(( GENERATIONS - PHASE1 - PHASE2 ))" --popsize 32 --rollouts 8 --sigma 0.04 --seed 3 \
  --init_from phase2-best-params.npy
python -m worldmodels.learning_curve --root "$WORLD_MODELS_HOME" --output docs/learning-curve.png
}
main "$@"
