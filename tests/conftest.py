"""Shared fixtures: a private artifact tree per test, a real S3-compatible server with a bucket per test,
and a helper to run the real entry scripts."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import subprocess
import sys
import traceback
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


def pytest_configure(config) -> None:
    """Give this process's TensorFlow the stage scripts' thread count before anything starts it, so a script
    run in this process computes what it computes in its own (workers.WORKER_THREADS)."""
    from worldmodels.workers import pin_worker_threads

    if not hasattr(config, "workerinput") and config.getoption("numprocesses", None):
        return  # the xdist controller runs no tests
    pin_worker_threads()


def run_script(script: str, *args: str, root: Path, timeout: float = 300, check: bool = True,
               extra_env: dict | None = None, isolated: bool = False) -> subprocess.CompletedProcess:
    """Run `python worldmodels/<script> args...` as a user would, against the artifact root `root`.

    By default the script's `main(argv)` runs in this process, with the environment, working directory,
    argv and output a fresh `python worldmodels/<script>` would have: the same code without a new interpreter
    and TensorFlow start (~5 s of CPU each, half the suite's time once).  `isolated=True` starts a fresh
    interpreter (and honours `timeout`), for what only a process gives: TensorFlow's device setup, an exit that
    skips teardown.
    """
    env = {**os.environ, HOME_VARIABLE: str(root), "HOME": str(root.parent), **(extra_env or {})}
    command = [sys.executable, str(REPO / "worldmodels" / script), *args]
    if isolated:
        result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    else:
        result = _run_in_this_process(script, command, env)
    if check and result.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def _run_in_this_process(script: str, command: list[str], env: dict) -> subprocess.CompletedProcess:
    """`command` run as its script's `main(argv)`: exit codes and output as the interpreter would give them."""
    module = importlib.import_module("worldmodels." + script.removesuffix(".py").replace("/", "."))
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    os.environ.clear()
    os.environ.update(env)
    os.chdir(REPO)
    sys.argv = command[1:]
    if "boto3" in sys.modules:  # a fresh interpreter holds no credentials an earlier run resolved
        sys.modules["boto3"].DEFAULT_SESSION = None
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                module.main(command[2:])
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
                if isinstance(exit.code, str):
                    print(exit.code, file=sys.stderr)
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        set_on_import = {name: value for name, value in os.environ.items() if name not in env}  # e.g. SDL's
        os.environ.clear()
        os.environ.update(saved_env)
        os.environ.update(set_on_import)
        os.chdir(saved_cwd)
        sys.argv = saved_argv
    return subprocess.CompletedProcess(command, code, stdout.getvalue(), stderr.getvalue())


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one `error: ...` line of a failed run, asserting there is no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]
