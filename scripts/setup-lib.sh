# Shared by tf-setup.sh, tf-cpu-setup.sh and gym-setup.sh: install this package into a Python
# environment without prompts, as root or through sudo, on current Ubuntu or Debian.  Idempotent.
# Environment: PYTHON (interpreter to build the venv from, default python3), WORLD_MODELS_VENV
# (venv folder, default <repo>/.venv; an already active venv or conda env is used as it is).

WM_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

wm_sudo() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

wm_apt_install() {
    # Install Debian/Ubuntu packages that are missing; no prompts, nothing when all are present.
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "warning: apt-get not found; make sure these are installed: ${missing[*]}" >&2
        return 0
    fi
    wm_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    wm_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

wm_python() {
    # The interpreter to install into: the active venv/conda env, else a venv made (once) for this repo.
    if [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
        command -v python
        return 0
    fi
    local venv="${WORLD_MODELS_VENV:-$WM_REPO/.venv}"
    if [ ! -x "$venv/bin/python" ]; then
        "${PYTHON:-python3}" -m venv "$venv" >&2
    fi
    echo "$venv/bin/python"
}

wm_pip_install() {
    # pip install "<repo>[extras]" in editable mode, so `python worldmodels/...` commands work from the clone.
    local extras="$1" python
    python="$(wm_python)"
    "$python" -m pip install -q --upgrade pip >&2
    "$python" -m pip install -q -e "$WM_REPO[$extras]"
    echo "installed worldmodels[$extras] into $("$python" -c 'import sys; print(sys.prefix)')"
    if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ]; then
        echo "activate it with: source ${WORLD_MODELS_VENV:-$WM_REPO/.venv}/bin/activate"
    fi
}
