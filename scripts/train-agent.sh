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
NUM_PROCESS="${NUM_PROCESS:-2}"
SNAPSHOT_EVERY="${SNAPSHOT_EVERY:-5}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
SNAPSHOT="${SNAPSHOT:-$PWD/runs/agent-2core}"
mkdir -p "$WORLD_MODELS_HOME"
stages="$WORLD_MODELS_HOME/stages.csv"

snapshot() {  # copy what continuing the run needs into $SNAPSHOT, replacing the previous snapshot atomically
  local temp="$SNAPSHOT.tmp" newest
  rm -rf "$temp" && mkdir -p "$temp/control/generations"
  cp "$stages" "$temp/"
  find "$WORLD_MODELS_HOME" -maxdepth 1 -name 'phase*-best-params.npy' -exec cp {} "$temp/" \;
  (cd "$WORLD_MODELS_HOME" && cp -r --parents vae-training/models memory-training/models "$temp/")
  rm -rf "$temp"/*-training/models/checkpoints
  (cd "$WORLD_MODELS_HOME/control" && cp -r config.json rewards.log evaluations.log best evaluations "$temp/control/" 2>/dev/null || true)
  for run in "$WORLD_MODELS_HOME"/control-archive/*/; do  # earlier phases: their logs and best controller
    [ -d "$run" ] || continue
    mkdir -p "$temp/control-archive/$(basename "$run")"
    (cd "$run" && cp -r config.json rewards.log evaluations.log best evaluations "$temp/control-archive/$(basename "$run")/" 2>/dev/null || true)
  done
  newest=$(ls "$WORLD_MODELS_HOME/control/generations" | grep -E '^generation_[0-9]+$' | sort -t_ -k2 -n | tail -1)
  [ -n "$newest" ] && cp -r "$WORLD_MODELS_HOME/control/generations/$newest" "$temp/control/generations/"
  rm -rf "$SNAPSHOT.old" && { [ ! -e "$SNAPSHOT" ] || mv "$SNAPSHOT" "$SNAPSHOT.old"; } && mv "$temp" "$SNAPSHOT" && rm -rf "$SNAPSHOT.old"
  echo "== snapshot of ${newest:-no generation yet} -> $SNAPSHOT (commit it to keep the run)"
}
if [ ! -f "$stages" ] && [ -f "$SNAPSHOT/stages.csv" ]; then  # a new machine: continue the committed run
  echo "== restoring the run from $SNAPSHOT"
  cp -r "$SNAPSHOT"/. "$WORLD_MODELS_HOME/"
fi
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
  --epochs 40 --batch_size 20
# CMA-ES logs its own time and env steps per generation (control/rewards.log); re-running continues it.
done_generations() {  # the newest finished generation + 1 (a restored snapshot holds only the newest)
  local newest
  newest=$(ls "$WORLD_MODELS_HOME/control/generations" 2>/dev/null | sed -nE 's/^generation_([0-9]+)$/\1/p' | sort -n | tail -1)
  echo $(( ${newest:--1} + 1 ))
}
cma() {  # cma GENERATIONS FLAGS...: run CMA-ES to GENERATIONS in steps of SNAPSHOT_EVERY, snapshotting each
  local goal="$1" target; shift
  while [ "$(done_generations)" -lt "$goal" ]; do
    target=$(( ($(done_generations) / SNAPSHOT_EVERY + 1) * SNAPSHOT_EVERY ))
    (cd "$WORLD_MODELS_HOME" && python "$repo/worldmodels/control/train_controller.py" \
      --generations "$(( target < goal ? target : goal ))" --covariance diagonal --max_idle_steps 50 \
      --eval_every 5 --eval_episodes 32 --num_process "$NUM_PROCESS" "$@")
    snapshot
  done
}
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
