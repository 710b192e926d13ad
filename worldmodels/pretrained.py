"""Pretrained agents: export a generation (V, M, C and their configs) as one archive with a manifest of
SHA-256 sums, and install such an archive after checking every sum.

    python -m worldmodels.pretrained export --generation max --output agent.tar.gz
    python -m worldmodels.pretrained install https://host/agent.tar.gz     # or s3://..., or a local path

An archive whose files do not match its manifest, or that holds anything else, is refused whole; one that
is accepted replaces the old agent all together, even if the install is killed half way.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import posixpath
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np

from worldmodels.errors import WorldModelsError, report_errors
from worldmodels.files import atomic_path, replace_together
from worldmodels.locks import INSTALL_STAGE, stage_lock
from worldmodels.paths import ArtifactTree

MANIFEST = "manifest.json"
FORMAT = 1
SOURCE_VARIABLE = "WORLD_MODELS_PRETRAINED"
# The agent shipped in the repository, with its SHA-256 pinned beside it (`pretrained/`).
SHIPPED_ARCHIVE = Path(__file__).resolve().parents[1] / "pretrained" / "worldmodels-agent.tar.gz"
BUCKET_SOURCE = "s3://world-models/pretrained/worldmodels-agent.tar.gz"


def default_source() -> tuple[str, str]:
    """(source, pinned sha256 or ""): $WORLD_MODELS_PRETRAINED, else the shipped archive, else the team bucket."""
    if os.environ.get(SOURCE_VARIABLE):
        return os.environ[SOURCE_VARIABLE], ""
    pin = SHIPPED_ARCHIVE.with_name(SHIPPED_ARCHIVE.name + ".sha256")
    if SHIPPED_ARCHIVE.is_file() and pin.is_file():
        return str(SHIPPED_ARCHIVE), pin.read_text().split()[0]
    return BUCKET_SOURCE, ""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def agent_files(tree: ArtifactTree, generation: str) -> tuple[int, list[Path]]:
    """The files that make up a generation's agent: V, M, the generation folder and the run's config."""
    from worldmodels.control.generations import resolve_generation
    from worldmodels.memory.mdn_rnn import CONFIG_NAME as MDN_CONFIG, WEIGHTS_NAME as MDN_WEIGHTS
    from worldmodels.vision.vae import CONFIG_NAME as VAE_CONFIG, WEIGHTS_NAME as VAE_WEIGHTS

    _, label = resolve_generation(tree, "max" if generation == "best" else generation)
    number = int(label)
    files = [tree.vae_models / VAE_WEIGHTS, tree.vae_models / VAE_CONFIG,
             tree.memory_models / MDN_WEIGHTS, tree.memory_models / MDN_CONFIG,
             *sorted(tree.generation(number).iterdir())]
    files += [path for path in (tree.control / "config.json", tree.best_controller / "best-params.npy",
                                tree.best_controller / "best.json") if path.is_file()]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise WorldModelsError(f"{missing[0]}: needed for the archive but missing")
    return number, files


def export_archive(tree: ArtifactTree, generation: str, output: Path, best_params: Path | None = None) -> dict:
    """Write a gzip tar of the agent plus `manifest.json` with the SHA-256 of every file; `best_params`
    replaces `control/best/` with parameters chosen outside the run (e.g. `average_means.py`'s)."""
    number, files = agent_files(tree, generation)
    contents = {path.relative_to(tree.root).as_posix(): path.read_bytes() for path in files}
    if best_params is not None:
        contents.update(_chosen_best(tree, number, Path(best_params)))
    manifest = {"format": FORMAT, "generation": number, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "files": {name: _sha256(data) for name, data in contents.items()}}
    with atomic_path(Path(output)) as temp:
        with tarfile.open(temp, "w:gz") as archive:
            for name, data in [(MANIFEST, json.dumps(manifest, indent=2).encode()), *contents.items()]:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
                archive.addfile(info, io.BytesIO(data))
    return manifest


def _chosen_best(tree: ArtifactTree, number: int, path: Path) -> dict[str, bytes]:
    """`control/best/` holding `path`'s parameters (checked against the generation's layout) and a best.json
    naming where they came from."""
    from worldmodels.control.generations import load_params

    params, reference = load_params(path), load_params(tree.generation(number) / "mean-params.npy")
    if params.shape != reference.shape:
        raise WorldModelsError(f"--best_params {path}: {params.size} parameters, but generation {number}'s "
                               f"controller has {reference.size}")
    best = tree.best_controller.relative_to(tree.root).as_posix()
    summary = {"generation": number, "params": path.name}
    return {f"{best}/best-params.npy": path.read_bytes(), f"{best}/best.json": json.dumps(summary, indent=2).encode()}


def verified_contents(archive_path: Path) -> tuple[dict, dict[str, bytes]]:
    """Read an archive fully and check it against its manifest; nothing is written."""
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            contents = {}
            for member in archive.getmembers():
                name = member.name
                if not member.isfile():
                    raise WorldModelsError(f"{archive_path}: refused: {name!r} is not a regular file")
                if name.startswith("/") or ".." in name.split("/") or posixpath.normpath(name) != name:
                    raise WorldModelsError(f"{archive_path}: refused: unsafe path {name!r}")
                contents[name] = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise WorldModelsError(f"{archive_path}: not a readable .tar.gz archive ({error})") from None
    if MANIFEST not in contents:
        raise WorldModelsError(f"{archive_path}: refused: no {MANIFEST}")
    try:
        manifest = json.loads(contents.pop(MANIFEST))
        expected = dict(manifest["files"])
    except (ValueError, KeyError, TypeError):
        raise WorldModelsError(f"{archive_path}: refused: {MANIFEST} is not a valid manifest") from None
    extra, missing = set(contents) - set(expected), set(expected) - set(contents)
    if extra or missing:
        name = sorted(extra or missing)[0]
        raise WorldModelsError(f"{archive_path}: refused: {name} is {'not in the manifest' if extra else 'missing'}")
    for name, data in contents.items():
        if _sha256(data) != expected[name]:
            raise WorldModelsError(f"{archive_path}: refused: checksum mismatch for {name}")
        problem = _code_risk(name, data)
        if problem:
            raise WorldModelsError(f"{archive_path}: refused: {name} {problem}")
    return manifest, contents


SAFE_SUFFIXES = (".h5", ".json", ".npy", ".npz", ".log", ".csv")


def _code_risk(name: str, data: bytes) -> str | None:
    """Why a member could run code when loaded (a pickle, or arrays of Python objects), or None.

    A manifest only proves an archive is self-consistent, so every member is checked for what it is: weights
    (HDF5), JSON, logs, and numeric arrays; anything else is refused before a byte is unpacked.
    """
    if not name.endswith(SAFE_SUFFIXES) or data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "is not weights, JSON, a log or a numeric array (pickles and other code-carrying files are never installed)"
    if name.endswith(".npy"):
        return _object_array_risk(io.BytesIO(data))
    if name.endswith(".npz"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.namelist():
                    with archive.open(member) as handle:
                        problem = _object_array_risk(handle)
                    if problem:
                        return problem
        except zipfile.BadZipFile:
            return "is not a valid .npz"
    return None


def _object_array_risk(handle) -> str | None:
    try:
        major, _ = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        dtype = read_header(handle)[2]
    except ValueError:
        return "is not a valid .npy array"
    return "holds Python objects (stored as pickles)" if dtype.hasobject else None


def fetch(source: str, folder: Path) -> Path:
    """A local copy of `source`: an https/http URL, an s3://bucket/key, or a local path."""
    if source.startswith(("http://", "https://")):
        target = folder / "archive.tar.gz"
        try:
            with urllib.request.urlopen(source, timeout=60) as response, target.open("wb") as handle:
                while block := response.read(1 << 20):
                    handle.write(block)
        except (urllib.error.URLError, OSError) as error:
            raise WorldModelsError(f"{source}: download failed ({getattr(error, 'reason', error)})") from None
        return target
    if source.startswith("s3://"):
        from worldmodels.s3 import BucketLocation, client, s3_errors

        bucket, _, key = source[5:].partition("/")
        target = folder / "archive.tar.gz"
        with s3_errors(BucketLocation(bucket)):
            client().download_file(bucket, key, str(target))
        return target
    path = Path(source).expanduser()
    if not path.is_file():
        raise WorldModelsError(f"{source}: archive not found")
    return path


def check_pin(archive_path: Path, sha256: str) -> None:
    """Refuse an archive whose own SHA-256 is not the pinned one, before any member is read."""
    digest = hashlib.sha256()
    with archive_path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != sha256.lower():
        raise WorldModelsError(f"{archive_path}: refused: SHA-256 {digest.hexdigest()} is not the pinned {sha256}")


def install_archive(source: str, tree: ArtifactTree, sha256: str = "") -> dict:
    """Fetch, check the pinned hash, verify every checksum, and only then unpack into the artifact tree.

    The files replace the old agent all together: a kill leaves the old agent or, once the next install
    or stage has finished the moves, the new one (`files.replace_together`), never a mix.
    """
    with tempfile.TemporaryDirectory() as folder:
        archive_path = fetch(source, Path(folder))
        if sha256:
            check_pin(archive_path, sha256)
        manifest, contents = verified_contents(archive_path)
    with stage_lock(tree, INSTALL_STAGE):
        replace_together(tree.root, contents, tree.install_staging)
    return manifest


@report_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a generation's agent as one archive")
    export.add_argument("--generation", default="max", help="a number, or 'max' for the newest")
    export.add_argument("--output", default="worldmodels-agent.tar.gz")
    export.add_argument("--best_params", type=Path, help="ship these parameters (.npy) as the best controller "
                                                         "instead of control/best/, e.g. averaged means")
    install = commands.add_parser("install", help="download, verify and unpack an archive")
    install.add_argument("source", nargs="?", default="",
                         help=f"URL, s3:// location or path (default: ${SOURCE_VARIABLE}, else the archive shipped "
                              f"in pretrained/ with its pinned SHA-256, else {BUCKET_SOURCE})")
    install.add_argument("--sha256", default="", help="refuse the archive unless its SHA-256 is this")
    args = parser.parse_args(argv)
    tree = ArtifactTree.from_env()
    if args.command == "export":
        manifest = export_archive(tree, args.generation, Path(args.output), args.best_params)
        print(f"exported generation {manifest['generation']} ({len(manifest['files'])} files) -> {args.output}")
    else:
        source, sha256 = (args.source, args.sha256) if args.source else default_source()
        sha256 = args.sha256 or sha256
        manifest = install_archive(source, tree, sha256)
        trust = (f"archive SHA-256 matches the pin {sha256[:12]}..." if sha256 else
                 "no --sha256 pin: only the archive's internal consistency was checked, not where it came from")
        print(f"installed generation {manifest['generation']} ({len(manifest['files'])} files, checksums verified; "
              f"{trust}) -> {tree.root}")


if __name__ == "__main__":
    main()
