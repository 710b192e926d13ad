"""Errors a user can act on, and the wrapper that turns them into one line and an exit code."""

from __future__ import annotations

import functools
import sys
from typing import Callable


class WorldModelsError(Exception):
    """A problem with the user's input or artifacts: reported as one line, never a traceback."""


EXIT_USER_ERROR = 2


def report_errors(main: Callable[..., None]) -> Callable[..., None]:
    """Run an entry point, printing `error: ...` on one line for problems the user can fix."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except WorldModelsError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            print("interrupted: completed work is kept; re-run the same command to resume", file=sys.stderr)
            sys.exit(130)

    return wrapper
