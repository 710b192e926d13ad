#!/usr/bin/env bash
# The recipe of the shipped agent (docs/agent-recipe.md): every command, in order, on a 2-core box.
# Each finished stage is timed into $WORLD_MODELS_HOME/stages.csv (stage, seconds, env_steps), which
# `python -m worldmodels.learning_curve` adds to the CMA-ES curve.  Re-running resumes: finished stages
# are skipped and the running one continues where it stopped (CMA-ES after its last finished generation).
#   WORLD_MODELS_HOME=~/wm-agent bash scripts/train-agent.sh            # GENERATIONS=60 by default
set -euo pipefail
export WORLD_MODELS_HOME="${WORLD_MODELS_HOME:-$HOME/world-models-experiments}"
GENERATIONS="${GENERATIONS:-60}"
NUM_PROCESS="${NUM_PROCESS:-2}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p "$WORLD_MODELS_HOME"
stages="$WORLD_MODELS_HOME/stages.csv"
[ -f "$stages" ] || echo "stage,seconds,env_steps" > "$stages"

stage() {  # stage NAME ENV_STEPS_COMMAND -- COMMAND...: run COMMAND unless NAME is logged, then log it
  local name="$1" count="$2"; shift 3
  if grep -q "^$name," "$stages"; then echo "== $name: done already"; return; fi
  echo "== $name: $*"
  local start; start=$(date +%s)
  "$@"
  echo "$name,$(( $(date +%s) - start )),$(eval "$count")" >> "$stages"
}
frames='python -c "from worldmodels.data.episode import list_episodes, read_tfrecord; from worldmodels.paths import ArtifactTree, default_root; print(sum(read_tfrecord(p).length for p in list_episodes(ArtifactTree(default_root()).random_rollouts)))"'

stage sampling "$frames" -- python worldmodels/data/sample_policy.py --policy random --num_process "$NUM_PROCESS" \
  --total_episodes 300 --episode_length 1000
resume() { [ -f "$WORLD_MODELS_HOME/$1/models/checkpoints/checkpoint" ] && echo 1 || echo 0; }  # after a kill
stage vae "echo 0" -- python worldmodels/vision/train_vae.py --load_model "$(resume vae-training)" --data local \
  --epochs 2 --learning_rate 0.001
stage latent_stats "echo 0" -- python worldmodels/data/sample_latent_stats.py --episode_start 0 --episodes 300 \
  --data local --dataset random
stage memory "echo 0" -- python worldmodels/memory/train_memory.py --load_model "$(resume memory-training)" \
  --epochs 20
# CMA-ES logs its own time and env steps per generation (control/rewards.log); re-running continues it.
python worldmodels/control/train_controller.py --generations "$GENERATIONS" --popsize 16 --rollouts 4 \
  --sigma 0.1 --covariance diagonal --max_idle_steps 50 --eval_every 5 --eval_episodes 32 --num_process "$NUM_PROCESS"
python -m worldmodels.learning_curve --root "$WORLD_MODELS_HOME" --output docs/learning-curve.png
