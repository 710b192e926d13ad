"""Export an agent, serve it over HTTP on loopback, install it with pretrained.sh, then use it."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
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
    env = {**os.environ, HOME_VARIABLE: str(root)}
    env.pop("WORLD_MODELS_PRETRAINED", None)
    return subprocess.run([sys.executable, "-m", "worldmodels.pretrained", "install", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)


# Installs `argv[1]` into the tree at `argv[2]` and dies (as SIGKILL would: no cleanup runs) right after
# the k-th call (`argv[4]`) of `worldmodels.files.<argv[3]>`, one of the steps of `replace_together`.
KILLED_INSTALL = """
import os, sys
from pathlib import Path
import worldmodels.files as files
from worldmodels.paths import ArtifactTree
from worldmodels.pretrained import install_archive

archive, root, step, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
real, calls = getattr(files, step), 0

def dying(*args):
    global calls
    real(*args)
    calls += 1
    if calls == k:
        os._exit(9)

setattr(files, step, dying)
install_archive(archive, ArtifactTree(Path(root)))
"""


def new_version(archive, out):
    """The same members with other bytes and a matching manifest: a newer agent to install over the old."""
    changed = {}

    def mark_new(contents):
        for name in contents:
            contents[name] += b"\nnew"
        changed.update(contents)

    self_consistent(archive, out, mark_new)
    return changed


@pytest.mark.parametrize("step,k", [
    ("write_bytes_atomic", "1"),  # one file staged
    ("write_bytes_atomic", "n"),  # every file staged, no journal yet
    ("write_json_atomic", "1"),  # the journal written, nothing moved
    ("move_into_place", "1"),
    ("move_into_place", "2"),
    ("move_into_place", "n/2"),
    ("move_into_place", "n-1"),
    ("move_into_place", "n"),  # every file moved, the journal not yet removed
])
def test_killed_install_leaves_the_old_agent_or_the_new_one(exported, tmp_path, step, k):
    from worldmodels.locks import stage_lock
    from worldmodels.pretrained import verified_contents

    _, archive, _ = exported
    _, old = verified_contents(archive)
    new = new_version(archive, tmp_path / "new.tar.gz")
    tree = ArtifactTree(tmp_path / "user")
    install_archive(str(archive), tree)
    n = len(new)
    calls = {"1": 1, "2": 2, "n/2": n // 2, "n-1": n - 1, "n": n}[k]
    killed = subprocess.run([sys.executable, "-c", KILLED_INSTALL, str(tmp_path / "new.tar.gz"), str(tree.root),
                             step, str(calls)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert killed.returncode == 9, killed.stderr[-2000:]
    assert tree.install_staging.exists()
    if step == "move_into_place" and calls < n:  # on disk, a mix until the moves are finished
        assert sum((tree.root / name).read_bytes() == data for name, data in new.items()) == calls
    with stage_lock(tree, "evaluate_controller"):  # any stage's first step: finish or discard the install
        installed = {name: (tree.root / name).read_bytes() for name in new}
    assert installed == (old if step == "write_bytes_atomic" else new)
    assert not tree.install_staging.exists()
    install_archive(str(tmp_path / "new.tar.gz"), tree)
    assert {name: (tree.root / name).read_bytes() for name in new} == new


def test_rerunning_a_killed_install_from_the_command_line_completes_it(exported, tmp_path):
    _, archive, _ = exported
    new = new_version(archive, tmp_path / "new.tar.gz")
    tree = ArtifactTree(tmp_path / "user")
    install_archive(str(archive), tree)
    killed = subprocess.run([sys.executable, "-c", KILLED_INSTALL, str(tmp_path / "new.tar.gz"), str(tree.root),
                             "move_into_place", "3"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert killed.returncode == 9, killed.stderr[-2000:]
    assert run_script_install(tree.root, str(tmp_path / "new.tar.gz")).returncode == 0
    assert {name: (tree.root / name).read_bytes() for name in new} == new
    assert not tree.install_staging.exists()


def self_consistent(archive, out, change):
    """`archive` with `change(contents)` applied and the manifest regenerated to match: what an attacker can make."""
    from worldmodels.pretrained import verified_contents

    manifest, contents = verified_contents(archive)
    change(contents)
    manifest["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    with tarfile.open(out, "w:gz") as target:
        for name, data in [("manifest.json", json.dumps(manifest).encode()), *contents.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))
    return out


class Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/worldmodels-pwned",))


def object_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([Payload()], dtype=object), allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize("member,data,message", [
    ("control/generations/generation_0/es-state.pkl", lambda: pickle.dumps(Payload()), "pickles"),
    ("control/generations/generation_0/es-state.json", lambda: pickle.dumps(Payload()), "pickles"),
    ("control/generations/generation_0/best-params.npy", object_npy, "holds Python objects"),
])
def test_code_carrying_members_are_refused_even_with_a_matching_manifest(exported, tmp_path, member, data, message):
    _, archive, _ = exported
    bad = self_consistent(archive, tmp_path / "bad.tar.gz", lambda contents: contents.update({member: data()}))
    root = tmp_path / "victim"
    result = run_script_install(root, str(bad))
    assert result.returncode == 2 and f"refused: {member}" in error_line(result) and message in error_line(result)
    assert not root.exists() and not Path("/tmp/worldmodels-pwned").exists()
