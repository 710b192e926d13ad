# Shared by the agent recipes (train-agent.sh, train-agent-gen2.sh): each stage timed into stages.csv, CMA-ES
# run in steps that each end with a snapshot of the run into $SNAPSHOT (a small artifact tree in the
# repository: commit it, and the same recipe continues on a new machine).  Callers export WORLD_MODELS_HOME
# and set RUN_NAME (the snapshot's folder under runs/), then source this file; it moves to the repository root.
NUM_PROCESS="${NUM_PROCESS:-2}"
SNAPSHOT_EVERY="${SNAPSHOT_EVERY:-5}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
SNAPSHOT="${SNAPSHOT:-$repo/runs/$RUN_NAME}"
stages="$WORLD_MODELS_HOME/stages.csv"
mkdir -p "$WORLD_MODELS_HOME"

snapshot() {  # copy what continuing the run needs into $SNAPSHOT, replacing the previous snapshot atomically
  local temp="$SNAPSHOT.tmp" newest
  rm -rf "$temp" && mkdir -p "$temp/control/generations"
  cp "$stages" "$temp/"
  # the controllers a phase starts from (phase*-best-params.npy, distilled-params.npy) and their reports
  find "$WORLD_MODELS_HOME" -maxdepth 1 \( -name '*-params.npy' -o -name '*-params.json' \) -exec cp {} "$temp/" \;
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
copy_base() {  # copy_base HOME PARAMS: V and M of the artifact tree HOME, and PARAMS (relative to HOME, or
  # absolute) as base-params.npy: what a phase that starts from a trained controller needs
  local home="$1" params="$2"
  [[ "$params" = /* ]] || params="$home/$params"
  (cd "$home" && cp -r --parents vae-training/models memory-training/models "$WORLD_MODELS_HOME/")
  rm -rf "$WORLD_MODELS_HOME"/*-training/models/checkpoints
  cp "$params" "$WORLD_MODELS_HOME/base-params.npy"
}
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
resume() { [ -f "$WORLD_MODELS_HOME/$1/models/checkpoints/checkpoint" ] && echo 1 || echo 0; }  # after a kill
episode_frames() {  # episode_frames DATASET: frames in the tree's DATASET episodes (a stage's env steps)
  python -c "from worldmodels.data.episode import list_episodes, read_tfrecord; from worldmodels.paths import ArtifactTree, default_root
print(sum(read_tfrecord(p).length for p in list_episodes(ArtifactTree(default_root()).rollouts('$1'))))"
}
