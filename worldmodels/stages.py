"""What a stage needs before it runs: no other run of it on the same tree, no half-installed agent, and
with `--data s3`, its inputs pulled from the bucket."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from worldmodels.errors import WorldModelsError
from worldmodels.locks import stage_lock
from worldmodels.paths import ArtifactTree

StageFunction = TypeVar("StageFunction", bound=Callable[..., Any])


def stage(name: str, inputs: Callable[[Any, ArtifactTree], Sequence[Path]] | None = None
          ) -> Callable[[StageFunction], StageFunction]:
    """Make `function(config, tree, ...)` a pipeline stage: it runs under the stage's lock on `tree` (a second
    run is refused at once, see `locks.py`), and with `config.data == "s3"` pulls `inputs(config, tree)` first."""

    def decorate(function: StageFunction) -> StageFunction:
        @functools.wraps(function)
        def run(config: Any, tree: ArtifactTree, *args: Any, **kwargs: Any) -> Any:
            with stage_lock(tree, name):
                if inputs is not None:
                    fetch_stage_inputs(config.data, tree, inputs(config, tree))
                return function(config, tree, *args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


def fetch_stage_inputs(data: str, tree: ArtifactTree, folders: Sequence[Path]) -> None:
    """Make `folders` of the artifact tree present locally; `data='s3'` pulls them from the bucket
    named by $WORLD_MODELS_BUCKET (prefix $WORLD_MODELS_PREFIX)."""
    if data == "local":
        return
    if data != "s3":
        raise WorldModelsError(f"--data must be 'local' or 's3', got {data!r}")
    from worldmodels.s3 import BucketLocation, describe, pull, relative_folders

    location = BucketLocation.from_env()
    counts = pull(tree, location, relative_folders(tree, folders))
    print(f"pulled {location} -> {tree.root}: {describe(counts)}", flush=True)
