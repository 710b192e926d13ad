"""Shared fixtures: a private artifact tree per test and a helper to run the real entry scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worldmodels.paths import HOME_VARIABLE, ArtifactTree

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tree(tmp_path, monkeypatch) -> ArtifactTree:
    root = tmp_path / "experiments"
    monkeypatch.setenv(HOME_VARIABLE, str(root))
    return ArtifactTree(root)


def run_script(script: str, *args: str, root: Path, timeout: float = 300, check: bool = True,
               extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python worldmodels/<script> args...` as a user would, against the artifact root `root`."""
    env = {**os.environ, HOME_VARIABLE: str(root), "HOME": str(root.parent), **(extra_env or {})}
    result = subprocess.run([sys.executable, str(REPO / "worldmodels" / script), *args], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one `error: ...` line of a failed run, asserting there is no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]
