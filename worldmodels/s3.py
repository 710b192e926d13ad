"""Push and pull folders of the artifact tree to an S3 bucket, copying only what is new or changed.

The bucket holds the tree as it is (`s3://<bucket>/<prefix>/<folder>/...`), so `aws s3 sync` works on
the same layout in both directions.  Credentials come from the standard AWS chain; `AWS_ENDPOINT_URL`
points boto3 at an S3-compatible store.  Transient errors (throttling, 5xx, dropped, stalled or cut-short
connections) are retried by botocore and s3transfer; what still fails stops the run with one line, and
every file already copied is complete: a download lands under a temporary name and is renamed only once
its size (and MD5, where the ETag is one) matches the object's, and an upload replaces its key atomically
(one PUT, or a multipart upload that is completed last and aborted on failure).  Re-running finishes the job.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from worldmodels.errors import WorldModelsError
from worldmodels.files import TEMP_PREFIX, atomic_path
from worldmodels.paths import ArtifactTree

if TYPE_CHECKING:
    import botocore.client
    import botocore.config
    from boto3.s3.transfer import TransferConfig
    from s3transfer.manager import TransferManager

BUCKET_VARIABLE = "WORLD_MODELS_BUCKET"
PREFIX_VARIABLE = "WORLD_MODELS_PREFIX"
ATTEMPTS_VARIABLE = "WORLD_MODELS_S3_ATTEMPTS"
TIMEOUT_VARIABLE = "WORLD_MODELS_S3_TIMEOUT"
PART_SIZE_VARIABLE = "WORLD_MODELS_S3_PART_MB"
DEFAULT_BUCKET = "world-models"  # the upstream README's bucket
MiB = 1 << 20
FOLDERS = ("random-rollouts", "controller-rollouts", "controller-samples", "vae-training", "latent-stats",
           "memory-training", "control")


@dataclass(frozen=True)
class TransferSettings:
    """How hard each request is tried and when a file moves in parts: the one place these are set.

    `from_env` reads attempts, timeout and part size from the environment: tests shrink them, slow links raise them.
    """

    attempts: int = 8
    """tries per request (botocore's standard retry mode: throttling, 5xx, dropped or stalled connections)"""
    stream_attempts: int = 3
    """fresh requests for a download part whose reply breaks off or stalls midway (s3transfer's retries,
    each itself tried `attempts` times: a server that never answers costs attempts x stream_attempts x timeout)"""
    timeout: float = 60.0
    """seconds to wait for a connection, or for the next byte of a reply, before the try counts as failed"""
    part_size: int = 8 * MiB
    """bytes: files from this size up move in parts of this size (uploads' parts: at least S3's 5 MiB)"""

    @classmethod
    def from_env(cls) -> "TransferSettings":
        """Defaults, with $WORLD_MODELS_S3_ATTEMPTS, $WORLD_MODELS_S3_TIMEOUT (seconds) and
        $WORLD_MODELS_S3_PART_MB (MiB) where set."""
        values = {}
        for name, field, parse in ((ATTEMPTS_VARIABLE, "attempts", int), (TIMEOUT_VARIABLE, "timeout", float),
                                   (PART_SIZE_VARIABLE, "part_size", lambda text: int(float(text) * MiB))):
            text = os.environ.get(name, "").strip()
            if not text:
                continue
            try:
                values[field] = parse(text)
            except ValueError:
                raise WorldModelsError(f"${name}: {text!r} is not a number") from None
            if values[field] <= 0:
                raise WorldModelsError(f"${name}: must be positive, got {text!r}")
        return cls(**values)

    def client_config(self) -> "botocore.config.Config":
        from botocore.config import Config

        # "standard" retries cover throttling (SlowDown), 5xx, dropped connections and read timeouts.
        return Config(retries={"max_attempts": self.attempts, "mode": "standard"},
                      connect_timeout=self.timeout, read_timeout=self.timeout)

    def transfer_config(self) -> "TransferConfig":
        from boto3.s3.transfer import TransferConfig

        # botocore retries a request until its reply's head; s3transfer re-requests a body cut short or stalled.
        # "classic": the same code path on every machine (never the CRT).
        return TransferConfig(multipart_threshold=self.part_size, multipart_chunksize=self.part_size,
                              num_download_attempts=self.stream_attempts, preferred_transfer_client="classic")


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


def client(settings: TransferSettings | None = None) -> "botocore.client.BaseClient":
    import boto3

    # boto3 reads AWS_ENDPOINT_URL itself.
    return boto3.client("s3", config=(settings or TransferSettings.from_env()).client_config())


@contextlib.contextmanager
def transfers(s3: "botocore.client.BaseClient", settings: TransferSettings) -> Iterator["TransferManager"]:
    """s3transfer's manager for whole files: multipart from `settings.part_size` up, parts on several threads."""
    from boto3.s3.transfer import create_transfer_manager

    with create_transfer_manager(s3, settings.transfer_config()) as manager:
        yield manager


@contextlib.contextmanager
def s3_errors(location: BucketLocation, doing: str = "") -> Iterator[None]:
    """Turn botocore's and s3transfer's exceptions into one-line errors naming the bucket (and the file)."""
    from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError,
                                     PartialCredentialsError)
    from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError, S3UploadFailedError

    where = f"{location}: {doing}: " if doing else f"{location}: "
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise WorldModelsError("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                               "AWS_PROFILE, or use an instance role") from None
    except EndpointConnectionError as error:
        raise WorldModelsError(f"{where}cannot reach the S3 endpoint ({error})") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404"):
            raise WorldModelsError(f"{location}: bucket {location.bucket!r} does not exist") from None
        message = error.response.get("Error", {}).get("Message", "")
        raise WorldModelsError(_line(f"{where}S3 refused the request ({code or error}{': ' if message else ''}"
                                     f"{message}); {RESUME}")) from None
    except RetriesExceededError as error:  # s3transfer's own retries of a download stream
        raise WorldModelsError(_line(f"{where}gave up after repeated failures ({error.last_exception}); "
                                     f"{RESUME}")) from None
    except (BotoCoreError, S3DownloadFailedError, S3UploadFailedError) as error:
        raise WorldModelsError(_line(f"{where}{error}; {RESUME}")) from None


RESUME = "files copied so far are complete; re-run the same command to finish"


def _line(text: str) -> str:
    return " ".join(text.split())


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _md5_etag(etag: str) -> str | None:
    """The MD5 an ETag is, or None: multipart uploads' ETags (`<md5 of md5s>-<parts>`) and SSE-KMS ones are not."""
    etag = etag.strip('"')
    return etag if len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower()) else None


@dataclass(frozen=True)
class RemoteFile:
    size: int
    etag: str
    modified: float  # POSIX seconds


def _same(path: Path, remote: RemoteFile) -> bool:
    """Same size, and same MD5 where the ETag is one."""
    if path.stat().st_size != remote.size:
        return False
    md5 = _md5_etag(remote.etag)
    return md5 is None or _md5(path) == md5


def _remote_files(s3, location: BucketLocation, folder: str) -> dict[str, RemoteFile]:
    """Relative path (from the tree root) -> size, ETag and time of every object under a folder."""
    base = location.key(folder).rstrip("/") + "/"
    strip = len(location.key(""))
    files = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=base):
        for item in page.get("Contents", []):
            files[item["Key"][strip:]] = RemoteFile(item["Size"], item["ETag"], item["LastModified"].timestamp())
    return files


def _unfinished_uploads(s3, location: BucketLocation, folder: str) -> dict[str, list[str]]:
    """Key -> ids of multipart uploads under a folder that were begun and never completed or aborted
    (a push killed, or one whose abort failed too): invisible in listings, but stored and billed."""
    base = location.key(folder).rstrip("/") + "/"
    uploads: dict[str, list[str]] = {}
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=location.bucket, Prefix=base):
        for upload in page.get("Uploads", []):
            uploads.setdefault(upload["Key"], []).append(upload["UploadId"])
    return uploads


def _local_files(root: Path, folder: str) -> list[Path]:
    base = root / folder
    if not base.is_dir():
        return []
    return sorted(path for path in base.rglob("*")
                  if path.is_file() and not any(part.startswith(TEMP_PREFIX) for part in path.relative_to(root).parts))


def push(tree: ArtifactTree, location: BucketLocation, folders: Sequence[str] = FOLDERS,
         settings: TransferSettings | None = None) -> dict:
    """Upload files of `folders` that are new, or changed and newer than the bucket's copy.

    A bucket object newer than the local file is left alone (another machine pushed progress since).
    Each key changes at once, from the old object to the whole new one: a single PUT, or a multipart
    upload completed after its last part (s3transfer aborts it on failure; unfinished uploads of a key,
    left by a killed push, are aborted when the key is uploaded again).
    """
    settings = settings or TransferSettings.from_env()
    s3, counts = client(settings), {"uploaded": 0, "unchanged": 0, "kept": 0}
    with s3_errors(location), transfers(s3, settings) as manager:
        s3.head_bucket(Bucket=location.bucket)
        for folder in folders:
            remote = _remote_files(s3, location, folder)
            unfinished = _unfinished_uploads(s3, location, folder)
            for path in _local_files(tree.root, folder):
                relative = path.relative_to(tree.root).as_posix()
                theirs = remote.get(relative)
                if theirs is not None and _same(path, theirs):
                    counts["unchanged"] += 1
                elif theirs is not None and theirs.modified > path.stat().st_mtime:
                    counts["kept"] += 1
                else:
                    key = location.key(relative)
                    with s3_errors(location, f"uploading {relative}"):
                        # This push replaces the key, so another upload to it that never finished is void.
                        for upload_id in unfinished.pop(key, []):
                            s3.abort_multipart_upload(Bucket=location.bucket, Key=key, UploadId=upload_id)
                        manager.upload(str(path), location.bucket, key).result()
                    counts["uploaded"] += 1
    return counts


def pull(tree: ArtifactTree, location: BucketLocation, folders: Sequence[str] = FOLDERS,
         settings: TransferSettings | None = None) -> dict:
    """Download objects under `folders` that are new, or changed and newer than the local file.

    A local file newer than the bucket's copy is kept (this machine has progress the bucket lacks);
    each download lands atomically, once checked, and takes the object's time as its modification time.
    """
    settings = settings or TransferSettings.from_env()
    s3, counts = client(settings), {"downloaded": 0, "unchanged": 0, "kept": 0}
    with s3_errors(location), transfers(s3, settings) as manager:
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
                with s3_errors(location, f"downloading {relative}"), atomic_path(path) as temp:
                    _download(manager, location, relative, theirs, temp)
                    os.utime(temp, (theirs.modified, theirs.modified))
                counts["downloaded"] += 1
    return counts


def _download(manager: "TransferManager", location: BucketLocation, relative: str, theirs: RemoteFile,
              target: Path) -> None:
    """Fetch the listed object to `target` and check it is whole: the bytes received and the file's size
    against the listing's, and its MD5 where the ETag is one."""
    from s3transfer.subscribers import BaseSubscriber

    class Listed(BaseSubscriber):
        received = 0
        lock = threading.Lock()

        def on_queued(self, future, **kwargs):
            # The listing's size and ETag spare a HEAD, and the parts of a multipart download are fetched
            # with If-Match: all from the listed version, or a refusal.
            future.meta.provide_transfer_size(theirs.size)
            future.meta.provide_object_etag(theirs.etag)

        def on_progress(self, future, bytes_transferred, **kwargs):
            with self.lock:  # parts arrive on several threads; a retried part first counts its bytes back out
                self.received += bytes_transferred

    listed = Listed()
    manager.download(location.bucket, location.key(relative), str(target), subscribers=[listed]).result()
    # A part that came back short with a Content-Length that agreed leaves a hole, not a short file: count.
    size, md5 = min(listed.received, target.stat().st_size), _md5_etag(theirs.etag)
    if size != theirs.size:
        raise WorldModelsError(f"{location}: downloading {relative}: {size} of {theirs.size} bytes arrived; "
                               f"{RESUME}")
    if md5 is not None and _md5(target) != md5:
        raise WorldModelsError(f"{location}: downloading {relative}: the bytes do not match the object's MD5 "
                               f"(replaced while downloading?); {RESUME}")


def describe(counts: dict) -> str:
    """One line for a push or pull: what moved, what was already there, what was newer on the other side."""
    moved = "uploaded" if "uploaded" in counts else "downloaded"
    side = "in the bucket" if moved == "uploaded" else "here"
    return f"{counts[moved]} {moved}, {counts['unchanged']} unchanged, {counts['kept']} kept (newer {side})"


def relative_folders(tree: ArtifactTree, folders: Sequence[Path]) -> list[str]:
    return [Path(folder).relative_to(tree.root).as_posix() for folder in folders]
