#!/usr/bin/env bash
# The environment stack: gymnasium CarRacing (Box2D from wheels, rendering through pygame with no
# X server or xvfb) and this package.  Safe to run again.  Usage: bash gym-setup.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/setup-lib.sh"
wm_apt_install python3-venv python3-pip python3-dev
wm_pip_install "${WORLD_MODELS_EXTRAS:-cpu}"
"$(wm_python)" - <<'PY'
import gymnasium as gym, numpy as np
env = gym.make("CarRacing-v3")
frame, _ = env.reset(seed=0)
env.step(np.array([0.0, 0.1, 0.0], np.float32))
assert frame.shape == (96, 96, 3) and frame.any(), "CarRacing rendered an empty frame"
print("CarRacing-v3 renders headless: ok")
PY
