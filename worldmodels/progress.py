"""Progress reporting: a live bar on a terminal, plain timestamped lines under nohup or in logs."""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm

PLAIN_INTERVAL_SECONDS = 10.0


class PlainProgress:
    """The subset of tqdm's interface we use, printing a full line at most every few seconds."""

    def __init__(self, total: int | None, desc: str, unit: str, interval: float = PLAIN_INTERVAL_SECONDS):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.n = 0
        self.postfix = ""
        self.start = self.last = time.monotonic()

    def update(self, count: int = 1) -> None:
        self.n += count
        now = time.monotonic()
        if now - self.last >= self.interval or (self.total is not None and self.n >= self.total):
            self.last = now
            self._print(now)

    def set_postfix(self, values: dict[str, Any] | None = None, **kwargs: Any) -> None:
        items = {**(values or {}), **kwargs}
        self.postfix = ", ".join(f"{key}={_short(value)}" for key, value in items.items())

    def close(self) -> None:
        pass

    def _print(self, now: float) -> None:
        total = f"/{self.total}" if self.total is not None else ""
        rate = self.n / max(now - self.start, 1e-9)
        extra = f" [{self.postfix}]" if self.postfix else ""
        print(f"{time.strftime('%H:%M:%S')} {self.desc}: {self.n}{total} {self.unit} ({rate:.2f} {self.unit}/s){extra}",
              file=sys.stderr, flush=True)

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(total: int | None, desc: str, unit: str = "it") -> Any:
    """A tqdm bar when stderr is a terminal, otherwise plain lines that `tail -f` and nohup read well."""
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
    return PlainProgress(total, desc, unit)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
