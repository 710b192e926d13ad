#!/usr/bin/env bash
# Generation 2 of the agent recipe (docs/agent-recipe.md): a new V and M trained on the trained agent's own
# driving plus random episodes, and C carried over to them by distillation instead of a CMA-ES from zero.
#   1. the teacher (V, M and TEACHER_PARAMS of the run in TEACHER_HOME, made by train-agent.sh) drives
#      CONTROLLER_EPISODES tracks; RANDOM_EPISODES random-walk episodes are sampled beside them
#   2. V (both datasets mixed), latent stats, M: the first recipe's settings
#   3. distill_controller.py fits the linear C on the new [z, h] that acts like the teacher on its episodes
#   4. CMA-ES from that controller: 16 candidates x 8 episodes, sigma 0.05 (phase 2's settings)
# Stages are timed into $WORLD_MODELS_HOME/stages.csv and re-running resumes, as in train-agent.sh; once C's
# run has started, every SNAPSHOT_EVERY generations the run is copied into $SNAPSHOT (commit it), which a new
# machine restores into an empty $WORLD_MODELS_HOME to continue CMA-ES (the episodes are not needed again).
#   WORLD_MODELS_HOME=~/wm-gen2 TEACHER_HOME=~/wm-agent bash scripts/train-agent-gen2.sh
set -euo pipefail
main() {  # read whole before it runs, so editing this file cannot derail a running copy
export WORLD_MODELS_HOME="${WORLD_MODELS_HOME:-$HOME/wm-gen2}"
TEACHER_HOME="${TEACHER_HOME:-$HOME/wm-agent}"
TEACHER_PARAMS="${TEACHER_PARAMS:-phase2-best-params.npy}"  # relative to TEACHER_HOME, or an absolute path
CONTROLLER_EPISODES="${CONTROLLER_EPISODES:-200}"
RANDOM_EPISODES="${RANDOM_EPISODES:-200}"
GENERATIONS="${GENERATIONS:-100}"
RUN_NAME=agent-gen2
source "$(dirname "${BASH_SOURCE[0]}")/run-lib.sh"
teacher="$WORLD_MODELS_HOME/teacher"  # an artifact tree of its own: the teacher's V, M and controller

make_teacher() {
  local params="$TEACHER_PARAMS"
  [[ "$params" = /* ]] || params="$TEACHER_HOME/$params"
  mkdir -p "$teacher/control/best"
  (cd "$TEACHER_HOME" && cp -r --parents vae-training/models memory-training/models "$teacher/")
  cp "$params" "$teacher/control/best/best-params.npy"
}
teacher_episodes() {  # sampled in the teacher's tree, then moved into this one whole
  WORLD_MODELS_HOME="$teacher" python worldmodels/data/sample_policy.py --policy controller --generation best \
    --total_episodes "$CONTROLLER_EPISODES" --num_process "$NUM_PROCESS"
  rm -rf "$WORLD_MODELS_HOME/controller-rollouts" && mv "$teacher/controller-rollouts" "$WORLD_MODELS_HOME/"
}

stage teacher "echo 0" -- make_teacher
stage sampling_controller "episode_frames controller" -- teacher_episodes
stage sampling_random "episode_frames random" -- python worldmodels/data/sample_policy.py \
  --policy random --num_process "$NUM_PROCESS" --total_episodes "$RANDOM_EPISODES" --episode_length 1000
stage vae "echo 0" -- python worldmodels/vision/train_vae.py --load_model "$(resume vae-training)" --data local \
  --dataset all --epochs 2 --learning_rate 0.001
stage latent_stats "echo 0" -- sh -c "python worldmodels/data/sample_latent_stats.py --dataset random \
  --episodes $RANDOM_EPISODES && python worldmodels/data/sample_latent_stats.py --dataset controller \
  --episodes $CONTROLLER_EPISODES"
stage memory "echo 0" -- python worldmodels/memory/train_memory.py --load_model "$(resume memory-training)" \
  --epochs 40 --batch_size 20
stage distill "echo 0" -- python worldmodels/control/distill_controller.py --teacher "$teacher" --dataset controller
# From the tree's root: --init_from names a file there, the same string on any machine.
cma "$GENERATIONS" --popsize 16 --rollouts 8 --sigma 0.05 --init_from distilled-params.npy
}
main "$@"
