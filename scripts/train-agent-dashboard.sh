#!/usr/bin/env bash
# The dashboard phase of the agent recipe (docs/agent-recipe.md, "Dashboard phase"): does C drive better when
# it also reads the indicator bar's gauges (true speed, ABS, steering angle, gyroscope) that V's crop hides?
# The trained agents hold ~53 speed and never brake; more gas crashes them (+0.3 on gas's bias: -6 +- 31,
# +0.6: -109 +- 38 over 32 tracks), so going faster needs knowing how fast the car goes.  Two arms, identical
# but for `--dashboard`, both from the recovery phase's best mean (generation 7) and V and M unchanged:
#   DASHBOARD=1 (default): C = tanh(W [z, h, d] + b), the 21 gauge weights start at zero
#   DASHBOARD=0: the control arm, C on [z, h] as before
#   DASHBOARD_SIGMA=0.1 (with DASHBOARD=1): the gauge weights' own initial step size (--dashboard_sigma);
#   snapshots go to runs/agent-dashboard-1-s0.1/
# Each: 16 candidates x 8 full-length episodes, the same training tracks in both arms (seed 5), sigma 0.04,
# the mean scored on the 64 held-out tracks every 4 generations.  Re-running resumes; every SNAPSHOT_EVERY
# generations the run is copied into runs/agent-dashboard-$DASHBOARD/ (commit it: on a new machine the same
# command restores it into an empty $WORLD_MODELS_HOME and continues).
#   WORLD_MODELS_HOME=~/wm-dash1 bash scripts/train-agent-dashboard.sh
#   DASHBOARD=0 WORLD_MODELS_HOME=~/wm-dash0 bash scripts/train-agent-dashboard.sh
set -euo pipefail
main() {  # read whole before it runs, so editing this file cannot derail a running copy
DASHBOARD="${DASHBOARD:-1}"
DASHBOARD_SIGMA="${DASHBOARD_SIGMA:-0}"
suffix=""; [ "$DASHBOARD_SIGMA" = 0 ] || suffix="-s$DASHBOARD_SIGMA"
export WORLD_MODELS_HOME="${WORLD_MODELS_HOME:-$HOME/wm-dash$DASHBOARD$suffix}"
BASE_HOME="${BASE_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/runs/agent-recovery}"
BASE_PARAMS="${BASE_PARAMS:-control/best/best-params.npy}"  # relative to BASE_HOME, or an absolute path
GENERATIONS="${GENERATIONS:-40}"
SNAPSHOT_EVERY="${SNAPSHOT_EVERY:-4}"
RUN_NAME="agent-dashboard-$DASHBOARD$suffix"
source "$(dirname "${BASH_SOURCE[0]}")/run-lib.sh"

stage base "echo 0" -- copy_base "$BASE_HOME" "$BASE_PARAMS"
cma "$GENERATIONS" --popsize 16 --rollouts 8 --sigma 0.04 --seed 5 --init_from base-params.npy \
  --max_idle_steps 0 --eval_every 4 --eval_episodes 64 --dashboard "$DASHBOARD" --dashboard_sigma "$DASHBOARD_SIGMA"
}
main "$@"
