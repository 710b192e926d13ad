#!/usr/bin/env bash
# CPU instance (sampling, latent stats, CMA-ES): TensorFlow's CPU build, the environment stack and
# this package, with the notebook and test extras.  Safe to run again.  Usage: bash tf-cpu-setup.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/setup-lib.sh"
wm_apt_install python3-venv python3-pip python3-dev
wm_pip_install "cpu,notebook,test"
"$(wm_python)" -c "import tensorflow as tf; print('tensorflow', tf.__version__, 'on CPU: ok')"
