"""One run of a stage per artifact tree: a second SSH session starting the same stage is refused at once.

Each stage holds an exclusive `flock` on `<tree>/locks/<stage>.lock` while it runs.  The kernel drops
the lock when the process dies, however it dies, so a killed run never leaves a stale lock behind.
Samplers lock their episode range instead (`locks/sample_policy/<folder>/episodes_<first>-<last>.lock`),
so samplers with disjoint `--start_episode` ranges share a folder while overlapping ones are refused.
The lock file holds the holder's PID, host and start time for the refusal message; it is never deleted
(deleting a lock file races with a run that has just opened it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Iterator

from worldmodels.errors import WorldModelsError
from worldmodels.files import finish_replacement
from worldmodels.paths import ArtifactTree

INSTALL_STAGE = "pretrained_install"
RANGE_PATTERN = re.compile(r"episodes_(\d+)-(\d+)\.lock")
HOLDER_WAIT_SECONDS = 1.0  # a run that has just taken its lock writes its PID within microseconds

# Lock files this process holds: taking one again (an entry script, then its stage function) is a no-op.
_held: set[Path] = set()


@contextlib.contextmanager
def stage_lock(tree: ArtifactTree, stage: str, episodes: range | None = None) -> Iterator[Path]:
    """Hold `stage`'s lock on `tree` (or, with `episodes`, that range's) for the block; refuse if it is held.

    An install of a pretrained agent that a kill interrupted is finished first, so no stage reads half of it.
    """
    span = "" if episodes is None else f"episodes_{episodes.start}-{episodes.stop - 1}"
    path = tree.lock(f"{stage}/{span}" if span else stage).resolve()  # one `_held` key however root is spelled
    what = f"{stage} {span.replace('_', ' ')}" if span else stage
    with _hold(tree, path, what):
        if episodes is not None:
            _refuse_overlap(tree, path, episodes, what)
        finish_interrupted_install(tree)
        yield path


def finish_interrupted_install(tree: ArtifactTree) -> None:
    """Roll an install that a kill interrupted forward (its journal was written) or back (it was not)."""
    if tree.install_staging.exists():
        with _hold(tree, tree.lock(INSTALL_STAGE).resolve(), INSTALL_STAGE):  # refused while an install is running
            finish_replacement(tree.root, tree.install_staging)


@contextlib.contextmanager
def _hold(tree: ArtifactTree, path: Path, what: str) -> Iterator[None]:
    if path in _held:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by spawned workers
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorldModelsError(f"{what} is already running on {tree.root}: {_holder(path)} holds {path}; "
                                   f"wait for it to finish or stop it, then re-run") from None
        # Rewritten in place, never renamed: the lock belongs to this inode. Who holds it is only a courtesy
        # to the next user: on a full disk the lock still holds, without it.
        os.ftruncate(descriptor, 0)
        try:
            os.write(descriptor, (json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                              "since": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n").encode())
        except OSError:
            pass
        _held.add(path)
        try:
            yield
        finally:
            _held.discard(path)
            os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # releases the lock


def _refuse_overlap(tree: ArtifactTree, path: Path, episodes: range, what: str) -> None:
    """Refuse if a live sampler holds a range overlapping `episodes` in the same folder.

    Each sampler takes its own range lock before probing the others', so of two overlapping samplers
    starting together at least one sees the other.
    """
    for other in path.parent.glob("episodes_*.lock"):
        match = RANGE_PATTERN.fullmatch(other.name)
        if other in _held or not match:
            continue
        first, last = int(match[1]), int(match[2])
        if last < episodes.start or first >= episodes.stop:
            continue
        descriptor = os.open(other, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorldModelsError(f"{what} overlap episodes {first}-{last}, which {_holder(other)} is sampling "
                                   f"into the same folder of {tree.root} (lock {other}); choose a disjoint "
                                   f"--start_episode range or wait for it") from None
        finally:
            os.close(descriptor)


def _holder(path: Path) -> str:
    """`PID 1234 on host-a since 2026-01-01 12:00:00`, read from a lock file that another run holds."""
    deadline = time.monotonic() + HOLDER_WAIT_SECONDS
    while True:
        try:
            holder = json.loads(path.read_text())
            return f"PID {holder['pid']} on {holder['host']} since {holder['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                return "another process"
            time.sleep(0.05)
