"""Atomic file writes and append-only logs, so a killed stage never leaves a half-written artifact."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Collection, Iterator, Mapping, Sequence

from worldmodels.errors import WorldModelsError

TEMP_PREFIX = ".tmp-"


def temporary_name(final: Path) -> Path:
    """A unique name beside `final` that listings of finished artifacts skip (it starts with a dot)."""
    return final.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex[:8]}-{final.name}")


def target_name(temp: Path) -> str:
    """The final name a `temporary_name` stands for."""
    return temp.name[len(TEMP_PREFIX) + 9:]  # past the prefix, 8 hex digits and a dash


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it into place only if the block succeeds.

    The temporary name keeps the final suffix (Keras insists on `.weights.h5`) and starts with a
    dot so folder listings and globs of finished artifacts never see it.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = temporary_name(final)
    try:
        yield temp
        os.replace(temp, final)
    except OSError as error:
        raise _naming(error, final) from error
    finally:
        if temp.exists():
            temp.unlink()


@contextlib.contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `final`; it takes `final`'s place, whole, only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = temporary_name(final)
    temp.mkdir()
    try:
        yield temp
        if final.exists():  # an earlier complete copy (a re-run of the same item): replaced whole
            shutil.rmtree(final)
        os.replace(temp, final)
    except OSError as error:
        raise _naming(error, final) from error
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _naming(error: OSError, final: Path) -> OSError:
    """A failed write on an open handle (a full disk) names no file: name the artifact being written."""
    if error.filename is not None:
        return error
    return type(error)(error.errno, error.strerror, str(final))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as temp:
        temp.write_bytes(data)


def write_json_atomic(path: Path, payload: Any) -> None:
    write_bytes_atomic(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    """Read a JSON artifact, turning a damaged file into a one-line error."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise WorldModelsError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WorldModelsError(f"{path}: not valid JSON ({error})") from None


def file_fingerprint(path: Path) -> str:
    """A short content hash: which model an artifact was made with."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def remove_stale_temporaries(folder: Path, names: Collection[str] | None = None) -> int:
    """Delete temporary files and folders left in `folder` by a killed run; returns how many.

    With `names`, only the temporaries of those final names: other runs may be writing the rest
    (samplers of other episode ranges share a folder).
    """
    removed = 0
    if folder.is_dir():
        for temp in folder.glob(f"{TEMP_PREFIX}*"):
            if names is not None and target_name(temp) not in names:
                continue
            if temp.is_dir():
                shutil.rmtree(temp, ignore_errors=True)
            else:
                temp.unlink(missing_ok=True)
            removed += 1
    return removed


STAGED_FILES = "files"
JOURNAL = "journal.json"


def replace_together(root: Path, contents: Mapping[str, bytes], staging: Path) -> None:
    """Write `contents` (paths relative to `root` -> bytes) all or nothing, through `staging` (below `root`).

    Every file is staged first, then a journal listing them is written atomically (the commit point),
    then each is renamed into place.  A kill at any point leaves, once `finish_replacement` has run
    (the next call, or the next stage's start), either every old file or every new one.
    """
    finish_replacement(root, staging)
    for name, data in contents.items():
        write_bytes_atomic(staging / STAGED_FILES / name, data)
    write_json_atomic(staging / JOURNAL, {"files": sorted(contents)})
    finish_replacement(root, staging)


def finish_replacement(root: Path, staging: Path) -> None:
    """Complete an interrupted `replace_together`: with its journal, move the staged files that are
    still there into place (roll forward); without one, discard what was staged (roll back)."""
    journal = staging / JOURNAL
    if journal.is_file():
        for name in read_json(journal)["files"]:
            staged = staging / STAGED_FILES / name
            if staged.exists():  # the others were moved before the kill
                move_into_place(staged, root / name)
        journal.unlink()
    shutil.rmtree(staging, ignore_errors=True)


def move_into_place(staged: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, final)


class CsvLog:
    """An append-only CSV with named columns: one flushed row per call, so `tail -f` follows it."""

    def __init__(self, path: Path, columns: Sequence[str]):
        self.path = Path(path)
        self.columns = list(columns)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists() or self.path.stat().st_size == 0:
            with self.path.open("w", newline="") as handle:
                csv.writer(handle).writerow(self.columns)
        else:  # a log begun by an earlier version keeps its own columns
            with self.path.open(newline="") as handle:
                self.columns = next(csv.reader(handle), self.columns)

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one whole row; a write that fails (a full disk) is cut back off, so no half row is left."""
        line = io.StringIO()
        csv.writer(line).writerow([_format(row.get(column, "")) for column in self.columns])
        data = line.getvalue().encode()
        with self.path.open("ab", buffering=0) as handle:  # unbuffered: nothing is left to flush on close
            size, written = handle.tell(), 0
            try:
                while written < len(data):
                    written += handle.write(data[written:])
            except OSError:
                handle.truncate(size)
                raise


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
