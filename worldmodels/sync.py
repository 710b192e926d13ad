"""Entry script: push or pull folders of the artifact tree to or from S3.

    python worldmodels/sync.py push --bucket world-models --folders random-rollouts vae-training
    python worldmodels/sync.py pull --bucket world-models --prefix runs/2 --folders vae-training/models
"""

from __future__ import annotations

import argparse
import os

from worldmodels.errors import WorldModelsError, report_errors
from worldmodels.paths import ArtifactTree
from worldmodels.s3 import BUCKET_VARIABLE, DEFAULT_BUCKET, FOLDERS, PREFIX_VARIABLE, BucketLocation, describe, pull, push


@report_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("direction", choices=("push", "pull"))
    parser.add_argument("--bucket", default=os.environ.get(BUCKET_VARIABLE, DEFAULT_BUCKET),
                        help=f"bucket name (default: ${BUCKET_VARIABLE} or {DEFAULT_BUCKET})")
    parser.add_argument("--prefix", default=os.environ.get(PREFIX_VARIABLE, ""),
                        help=f"key prefix inside the bucket (default: ${PREFIX_VARIABLE} or none)")
    parser.add_argument("--folders", nargs="+", default=list(FOLDERS),
                        help="folders of the artifact tree, e.g. vae-training or vae-training/models (default: all)")
    args = parser.parse_args(argv)
    for folder in args.folders:
        if folder.startswith("/") or ".." in folder.split("/") or folder.split("/")[0] not in FOLDERS:
            raise WorldModelsError(f"--folders: {folder!r} is not a folder of the artifact tree {FOLDERS}")
    tree, location = ArtifactTree.from_env(), BucketLocation(args.bucket, args.prefix)
    if args.direction == "push":
        counts = push(tree, location, args.folders)
        print(f"pushed {tree.root} -> {location}: {describe(counts)}")
    else:
        counts = pull(tree, location, args.folders)
        print(f"pulled {location} -> {tree.root}: {describe(counts)}")


if __name__ == "__main__":
    main()
