"""Export an agent, serve it over HTTP on loopback, install it with pretrained.sh, then use it."""

from __future__ import annotations

import functools
import http.server
import io
import os
import subprocess
import tarfile
import threading

import pytest

from conftest import REPO, error_line, run_script
from helpers import train_tiny_controller
from worldmodels.errors import WorldModelsError
from worldmodels.paths import ArtifactTree, HOME_VARIABLE
from worldmodels.pretrained import export_archive, install_archive


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    tree = ArtifactTree(folder / "experiments")
    train_tiny_controller(tree)
    archive = folder / "serve" / "agent.tar.gz"
    archive.parent.mkdir()
    manifest = export_archive(tree, "max", archive)
    return tree, archive, manifest


@pytest.fixture(scope="module")
def http_url(exported):
    _, archive, _ = exported
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_manifest_lists_every_file_with_its_sha256(exported):
    tree, archive, manifest = exported
    assert manifest["generation"] == 0
    names = set(manifest["files"])
    assert {"vae-training/models/vae.weights.h5", "memory-training/models/mdn_rnn.json",
            "control/generations/generation_0/best-params.npy"} <= names
    with tarfile.open(archive) as opened:
        assert set(opened.getnames()) == names | {"manifest.json"}


def test_pretrained_sh_installs_from_http_and_the_agent_runs(exported, http_url, tmp_path):
    root = tmp_path / "new-user"
    env = {**os.environ, HOME_VARIABLE: str(root), "WORLD_MODELS_PRETRAINED": f"{http_url}/agent.tar.gz"}
    result = subprocess.run(["bash", str(REPO / "pretrained.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "checksums verified" in result.stdout
    tree, _, _ = exported
    for name in ("vae-training/models/vae.weights.h5", "control/generations/generation_0/best-params.npy"):
        assert (root / name).read_bytes() == (tree.root / name).read_bytes()
    sampled = run_script("data/sample_policy.py", "--policy", "controller", "--generation", "0", "--dtype", "numpy",
                         "--episodes", "1", "--episode_length", "10", "--num_process", "1", root=root)
    assert "sampled 1 episodes with generation 0" in sampled.stdout


def tampered(archive, tmp_path, change):
    """Rewrite `archive` with `change(name, data) -> data | None` applied to each member."""
    out = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(out, "w:gz") as target:
        for member in source.getmembers():
            data = change(member.name, source.extractfile(member).read())
            if data is None:
                continue
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))
    return out


@pytest.mark.parametrize("attack,message", [
    ("flip", "checksum mismatch for control/generations/generation_0/best-params.npy"),
    ("extra", "not in the manifest"),
    ("drop", "is missing"),
    ("truncate", "not a readable .tar.gz"),
])
def test_tampered_archive_is_refused_and_nothing_unpacked(exported, tmp_path, attack, message):
    _, archive, _ = exported
    target = "control/generations/generation_0/best-params.npy"
    if attack == "truncate":
        bad = tmp_path / "short.tar.gz"
        bad.write_bytes(archive.read_bytes()[:2000])
    elif attack == "flip":
        bad = tampered(archive, tmp_path, lambda name, data: data[:-4] + b"\x00\x00\x80\x3f" if name == target else data)
    elif attack == "drop":
        bad = tampered(archive, tmp_path, lambda name, data: None if name == target else data)
    else:
        bad = tampered(archive, tmp_path, lambda name, data: data)
        with tarfile.open(bad, "r:gz") as opened:
            members = [(m, opened.extractfile(m).read()) for m in opened.getmembers()]
        with tarfile.open(bad, "w:gz") as rewritten:
            for member, data in members + [(tarfile.TarInfo("control/evil.py"), b"print('hi')")]:
                member.size = len(data)
                rewritten.addfile(member, io.BytesIO(data))
    root = tmp_path / "victim"
    with pytest.raises(WorldModelsError, match=message):
        install_archive(str(bad), ArtifactTree(root))
    assert not root.exists()
    result = subprocess.run(["bash", str(REPO / "pretrained.sh"), str(bad)], env={**os.environ, HOME_VARIABLE: str(root)},
                            capture_output=True, text=True, timeout=120)
    assert message.split(" for ")[0] in error_line(result)
    assert not root.exists()


def test_pinned_sha256_is_checked_before_anything_is_read(exported, tmp_path):
    import hashlib

    _, archive, _ = exported
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    good = run_script_install(tmp_path / "pinned", str(archive), "--sha256", digest)
    assert good.returncode == 0 and "matches the pin" in good.stdout
    unpinned = run_script_install(tmp_path / "unpinned", str(archive))
    assert "only the archive's internal consistency was checked" in unpinned.stdout
    wrong = run_script_install(tmp_path / "wrong", str(archive), "--sha256", "0" * 64)
    assert "is not the pinned" in error_line(wrong)
    assert not (tmp_path / "wrong" / "vae-training").exists()
    # One changed byte (here in the gzip trailer, so the archive itself still reads) is refused by the pin.
    changed = tmp_path / "changed.tar.gz"
    data = bytearray(archive.read_bytes())
    data[-5] ^= 1
    changed.write_bytes(bytes(data))
    refused = run_script_install(tmp_path / "changed", str(changed), "--sha256", digest)
    assert "is not the pinned" in error_line(refused) and not (tmp_path / "changed" / "control").exists()


def run_script_install(root, *args: str):
    import sys

    env = {**os.environ, HOME_VARIABLE: str(root)}
    env.pop("WORLD_MODELS_PRETRAINED", None)
    return subprocess.run([sys.executable, "-m", "worldmodels.pretrained", "install", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
