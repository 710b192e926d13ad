"""Shared fixtures: a private artifact tree per test, a real S3-compatible server with a bucket per test,
and a helper to run the real entry scripts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from worldmodels.paths import HOME_VARIABLE, ArtifactTree

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tree(tmp_path, monkeypatch) -> ArtifactTree:
    root = tmp_path / "experiments"
    monkeypatch.setenv(HOME_VARIABLE, str(root))
    return ArtifactTree(root)


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-compatible server (moto in server mode) on loopback: boto3 is never patched."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch, request) -> str:
    """A fresh bucket named after the test, with the AWS variables pointing boto3 at the server."""
    import boto3

    for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    name = f"{re.sub('[^a-z0-9-]+', '-', request.node.name.lower().replace('_', '-'))[:40]}-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=name)
    monkeypatch.setenv("WORLD_MODELS_BUCKET", name)
    return name


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
