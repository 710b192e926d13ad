"""A real Ray head for tests, on loopback only: run inside a new network and PID namespace.

Ray binds to the machine's routable address even when told 127.0.0.1, and `ray stop` ends every Ray
process on the machine; in a namespace whose only interface is loopback, Ray listens on 127.0.0.1 alone
and everything it started ends with the namespace (see ../shared/reference/ray-notes.md).
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import REPO

ADDRESS = "127.0.0.1:6380"


def require_namespaces() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux unshare for a loopback-only Ray cluster")
    probe = subprocess.run([*unshare_command(), "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create network/PID namespaces here: {probe.stderr.decode().strip()}")


def unshare_command() -> list[str]:
    return ["unshare", *([] if os.geteuid() == 0 else ["-r"]), "-npf", "--mount-proc"]


def stage_command(script: str, *args: str) -> str:
    return " ".join([sys.executable, str(REPO / "worldmodels" / script), *args])


def run_with_ray_head(body: str, root: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run bash `body` in a fresh namespace where a 2-CPU Ray head listens at ADDRESS ($ADDRESS)."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    script = f"""set -e
ip link set lo up
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled HOME={temp} WORLD_MODELS_HOME={root} ADDRESS={ADDRESS}
ray start --head --node-ip-address 127.0.0.1 --port {ADDRESS.split(':')[1]} --num-cpus 2 --include-dashboard false \
  --temp-dir {temp}/ray --disable-usage-stats > {temp}/ray-start.log 2>&1 || {{ cat {temp}/ray-start.log; exit 1; }}
cd {REPO}
{body}
"""
    try:
        return subprocess.run([*unshare_command(), "bash", "-c", script], capture_output=True, text=True,
                              timeout=timeout)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
