"""What a stage needs before it runs: with `--data s3`, its inputs are pulled from the bucket first."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from worldmodels.errors import WorldModelsError
from worldmodels.paths import ArtifactTree


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
