"""Push and pull folders of the artifact tree to an S3 bucket, copying only what is new or changed.

The bucket holds the tree as it is (`s3://<bucket>/<prefix>/<folder>/...`), so `aws s3 sync` works on
the same layout in both directions.  Credentials come from the standard AWS chain; `AWS_ENDPOINT_URL`
points boto3 at an S3-compatible store.  Transient errors are retried by botocore.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from worldmodels.errors import WorldModelsError
from worldmodels.files import TEMP_PREFIX, atomic_path
from worldmodels.paths import ArtifactTree

if TYPE_CHECKING:
    import botocore.client

BUCKET_VARIABLE = "WORLD_MODELS_BUCKET"
PREFIX_VARIABLE = "WORLD_MODELS_PREFIX"
DEFAULT_BUCKET = "world-models"  # the upstream README's bucket
RETRY_ATTEMPTS = 8
FOLDERS = ("random-rollouts", "controller-rollouts", "controller-samples", "vae-training", "latent-stats",
           "memory-training", "control")


@dataclass(frozen=True)
class BucketLocation:
    bucket: str
    prefix: str = ""

    @classmethod
    def from_env(cls) -> "BucketLocation":
        return cls(os.environ.get(BUCKET_VARIABLE, DEFAULT_BUCKET), os.environ.get(PREFIX_VARIABLE, ""))

    def key(self, relative: str) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{relative}" if prefix else relative

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix.strip('/')}".rstrip("/")


def client() -> "botocore.client.BaseClient":
    import boto3
    from botocore.config import Config

    # boto3 reads AWS_ENDPOINT_URL itself; "standard" retries cover throttling, 5xx and dropped connections.
    return boto3.client("s3", config=Config(retries={"max_attempts": RETRY_ATTEMPTS, "mode": "standard"}))


@contextlib.contextmanager
def s3_errors(location: BucketLocation) -> Iterator[None]:
    """Turn botocore's exceptions into one-line errors naming the bucket."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, PartialCredentialsError

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise WorldModelsError("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                               "AWS_PROFILE, or use an instance role") from None
    except EndpointConnectionError as error:
        raise WorldModelsError(f"{location}: cannot reach the S3 endpoint ({error})") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404"):
            raise WorldModelsError(f"{location}: bucket {location.bucket!r} does not exist") from None
        raise WorldModelsError(f"{location}: S3 refused the request ({code or error})") from None


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class RemoteFile:
    size: int
    etag: str
    modified: float  # POSIX seconds


def _same(path: Path, remote: RemoteFile) -> bool:
    """Same size, and same MD5 where the ETag is one (multipart uploads' ETags are not)."""
    if path.stat().st_size != remote.size:
        return False
    etag = remote.etag.strip('"')
    return "-" in etag or _md5(path) == etag


def _remote_files(s3, location: BucketLocation, folder: str) -> dict[str, RemoteFile]:
    """Relative path (from the tree root) -> size, ETag and time of every object under a folder."""
    base = location.key(folder).rstrip("/") + "/"
    strip = len(location.key(""))
    files = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=base):
        for item in page.get("Contents", []):
            files[item["Key"][strip:]] = RemoteFile(item["Size"], item["ETag"], item["LastModified"].timestamp())
    return files


def _local_files(root: Path, folder: str) -> list[Path]:
    base = root / folder
    if not base.is_dir():
        return []
    return sorted(path for path in base.rglob("*")
                  if path.is_file() and not any(part.startswith(TEMP_PREFIX) for part in path.relative_to(root).parts))


def push(tree: ArtifactTree, location: BucketLocation, folders: Sequence[str] = FOLDERS) -> dict:
    """Upload files of `folders` that are new, or changed and newer than the bucket's copy.

    A bucket object newer than the local file is left alone (another machine pushed progress since).
    """
    s3, counts = client(), {"uploaded": 0, "unchanged": 0, "kept": 0}
    with s3_errors(location):
        s3.head_bucket(Bucket=location.bucket)
        for folder in folders:
            remote = _remote_files(s3, location, folder)
            for path in _local_files(tree.root, folder):
                relative = path.relative_to(tree.root).as_posix()
                theirs = remote.get(relative)
                if theirs is not None and _same(path, theirs):
                    counts["unchanged"] += 1
                elif theirs is not None and theirs.modified > path.stat().st_mtime:
                    counts["kept"] += 1
                else:
                    s3.upload_file(str(path), location.bucket, location.key(relative))
                    counts["uploaded"] += 1
    return counts


def pull(tree: ArtifactTree, location: BucketLocation, folders: Sequence[str] = FOLDERS) -> dict:
    """Download objects under `folders` that are new, or changed and newer than the local file.

    A local file newer than the bucket's copy is kept (this machine has progress the bucket lacks);
    each download lands atomically and takes the object's time as its modification time.
    """
    s3, counts = client(), {"downloaded": 0, "unchanged": 0, "kept": 0}
    with s3_errors(location):
        s3.head_bucket(Bucket=location.bucket)
        for folder in folders:
            for relative, theirs in _remote_files(s3, location, folder).items():
                path = tree.root / relative
                if path.is_file() and _same(path, theirs):
                    counts["unchanged"] += 1
                    continue
                if path.is_file() and path.stat().st_mtime >= theirs.modified:
                    counts["kept"] += 1
                    continue
                with atomic_path(path) as temp:
                    s3.download_file(location.bucket, location.key(relative), str(temp))
                    os.utime(temp, (theirs.modified, theirs.modified))
                counts["downloaded"] += 1
    return counts


def describe(counts: dict) -> str:
    """One line for a push or pull: what moved, what was already there, what was newer on the other side."""
    moved = "uploaded" if "uploaded" in counts else "downloaded"
    side = "in the bucket" if moved == "uploaded" else "here"
    return f"{counts[moved]} {moved}, {counts['unchanged']} unchanged, {counts['kept']} kept (newer {side})"


def relative_folders(tree: ArtifactTree, folders: Sequence[Path]) -> list[str]:
    return [Path(folder).relative_to(tree.root).as_posix() for folder in folders]
