"""The agent shipped in pretrained/: its pin holds, `bash pretrained.sh` installs it offline, a changed byte is refused."""

import hashlib
import os
import subprocess

import pytest

from conftest import REPO, error_line
from worldmodels.paths import HOME_VARIABLE
from worldmodels.pretrained import SHIPPED_ARCHIVE, default_source

PIN = SHIPPED_ARCHIVE.with_name(SHIPPED_ARCHIVE.name + ".sha256")
MAX_BYTES = 20 * 1000 * 1000

pytestmark = pytest.mark.skipif(not SHIPPED_ARCHIVE.is_file(), reason="no agent shipped in pretrained/ yet")


def install(root, *args, env=None):
    environment = {**os.environ, HOME_VARIABLE: str(root), **(env or {})}
    environment.pop("WORLD_MODELS_PRETRAINED", None)
    return subprocess.run(["bash", str(REPO / "pretrained.sh"), *args], env=environment, cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_shipped_archive_matches_its_pin_and_size_limit():
    digest = hashlib.sha256(SHIPPED_ARCHIVE.read_bytes()).hexdigest()
    assert PIN.read_text().split()[0] == digest
    assert SHIPPED_ARCHIVE.stat().st_size <= MAX_BYTES
    assert default_source() == (str(SHIPPED_ARCHIVE), digest)


def test_pretrained_sh_installs_the_shipped_agent_offline(tmp_path):
    result = install(tmp_path / "tree")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "matches the pin" in result.stdout
    assert (tmp_path / "tree" / "control" / "best" / "best-params.npy").is_file()
    assert (tmp_path / "tree" / "vae-training" / "models" / "vae.weights.h5").is_file()


def test_a_changed_byte_is_refused_by_the_pin(tmp_path):
    changed = tmp_path / "changed.tar.gz"
    data = bytearray(SHIPPED_ARCHIVE.read_bytes())
    data[len(data) // 2] ^= 1
    changed.write_bytes(bytes(data))
    result = install(tmp_path / "tree", str(changed), "--sha256", PIN.read_text().split()[0])
    assert result.returncode == 2 and "is not the pinned" in error_line(result)
    assert not (tmp_path / "tree" / "control").exists()
