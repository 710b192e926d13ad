#!/usr/bin/env bash
# GPU instance (training V and M): NVIDIA driver, then TensorFlow with CUDA from pip wheels.
# Upstream habit, still supported:
#     source tf-setup.sh && before_reboot    # installs the driver; reboot if it asks
#     source tf-setup.sh && after_reboot     # installs TensorFlow[and-cuda] + this package, checks the GPU
# Or in one go, when the driver is already there:  bash tf-setup.sh
# Safe to run again; no prompts.

_wm_tf_setup_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$_wm_tf_setup_dir/scripts/setup-lib.sh"

before_reboot() {
    (
        set -euo pipefail
        wm_apt_install python3-venv python3-pip python3-dev
        if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
            echo "NVIDIA driver already working: no reboot needed"
        else
            wm_apt_install ubuntu-drivers-common
            wm_sudo ubuntu-drivers install --gpgpu || wm_sudo ubuntu-drivers autoinstall
            echo "driver installed: reboot, then run: source tf-setup.sh && after_reboot"
        fi
    )
}

after_reboot() {
    (
        set -euo pipefail
        wm_pip_install "gpu,notebook"
        "$(wm_python)" -c "import tensorflow as tf; gpus = tf.config.list_physical_devices('GPU'); print('GPUs:', gpus); assert gpus, 'TensorFlow sees no GPU: is the NVIDIA driver loaded (nvidia-smi)?'"
    )
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    before_reboot
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
        after_reboot
    fi
fi
