"""Errors a user can act on, and the wrapper that turns them into one line and an exit code."""

from __future__ import annotations

import errno
import functools
import os
import re
import sys
from typing import Callable


class WorldModelsError(Exception):
    """A problem with the user's input or artifacts: reported as one line, never a traceback."""


EXIT_USER_ERROR = 2
# Writes that fail for lack of space or permission: the user frees space (or fixes the folder) and re-runs.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG)
WRITE_PHRASES = ("No space left on device", "Disk quota exceeded", "Read-only file system", "Permission denied",
                 "File too large")
RESUME_HINT = "earlier artifacts are intact; free space (or fix the folder) and re-run the same command to resume"


def failed_write(error: BaseException) -> str | None:
    """One line for a write that failed for lack of space or permission, naming the path; else None.

    OSErrors carry the path; TensorFlow and HDF5 wrap the same failures in their own exception types,
    whose message names the path and the system's message.
    """
    text = " ".join(str(error).split())
    phrase = next((phrase for phrase in WRITE_PHRASES if phrase in text), None)
    if isinstance(error, OSError) and (error.errno in WRITE_ERRNOS or phrase):
        return f"{error.filename if error.filename is not None else 'a file'}: {phrase or error.strerror}"
    if phrase:  # TensorFlow prefixes the op's node ({{function_node ...}}) and suffixes it ([Op:SaveV2])
        text = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w+\]", "", text)
        return text if len(text) <= 400 else f"{text[:400]}..."
    return None


def report_errors(main: Callable[..., None]) -> Callable[..., None]:
    """Run an entry point, printing `error: ...` on one line for problems the user can fix."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except WorldModelsError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        except Exception as error:
            line = failed_write(error)
            if line is None:
                raise
            print(f"error: cannot write {line}; {RESUME_HINT}", file=sys.stderr, flush=True)
            sys.stdout.flush()
            # Not sys.exit: HDF5 and TensorFlow objects left mid-write can crash the interpreter's teardown.
            os._exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            print("interrupted: completed work is kept; re-run the same command to resume", file=sys.stderr)
            sys.exit(130)

    return wrapper
