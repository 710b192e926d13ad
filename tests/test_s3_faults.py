"""S3 sync under faults: a proxy between boto3 and the real S3 test server drops, stalls, fails and cuts
short chosen requests and replies.  A push or pull either ends with every file byte-identical on both
sides, or stops with one line and no partial file under a final name, locally or in the bucket; a re-run
finishes the job."""

from __future__ import annotations

import boto3
import numpy as np
import pytest

from conftest import error_line, run_script
from s3_faults import FaultProxy
from worldmodels.errors import WorldModelsError
from worldmodels.paths import ArtifactTree
from worldmodels.s3 import (ATTEMPTS_VARIABLE, MiB, PART_SIZE_VARIABLE, TIMEOUT_VARIABLE, BucketLocation,
                            TransferSettings, pull, push)
from worldmodels.stages import fetch_stage_inputs

TIMEOUT = 1.0  # seconds: the client's connect and read timeout in these tests
STALL = 2.5  # seconds a stalled request or reply stays silent: longer than TIMEOUT
PART_MB = 5  # S3's smallest part: LARGE moves in 3 parts both ways
LARGE = "random-rollouts/episode_000000.tfrecord"
SMALL = "vae-training/models/vae.json"
FILES = {LARGE: 2 * PART_MB * MiB + 12_345, SMALL: 40_000}


@pytest.fixture
def proxy(s3_endpoint, bucket, monkeypatch):
    """The fault proxy, with boto3 pointed at it and short timeouts, few attempts and small parts."""
    with FaultProxy(s3_endpoint, stall_seconds=STALL) as proxy:
        for name, value in {"AWS_ENDPOINT_URL": proxy.url, ATTEMPTS_VARIABLE: "3", TIMEOUT_VARIABLE: str(TIMEOUT),
                            PART_SIZE_VARIABLE: str(PART_MB)}.items():
            monkeypatch.setenv(name, value)
        yield proxy


@pytest.fixture
def direct(s3_endpoint):
    """A client that talks to the server itself, to see what the bucket really holds."""
    return boto3.client("s3", endpoint_url=s3_endpoint)


def write_files(tree: ArtifactTree, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    contents = {name: rng.integers(0, 256, size, dtype=np.uint8).tobytes() for name, size in FILES.items()}
    for name, data in contents.items():
        (tree.root / name).parent.mkdir(parents=True, exist_ok=True)
        (tree.root / name).write_bytes(data)
    return contents


def bucket_contents(direct, bucket: str) -> dict[str, bytes]:
    listing = direct.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: direct.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listing}


def local_contents(tree: ArtifactTree) -> dict[str, bytes]:
    """Every file under the tree, temporaries included (none should be left)."""
    return {path.relative_to(tree.root).as_posix(): path.read_bytes()
            for path in tree.root.rglob("*") if path.is_file()}


def assert_only_whole_files(found: dict[str, bytes], contents: dict[str, bytes]) -> None:
    """Every file found is one of the expected, under its final name and complete."""
    assert {name: contents.get(name) for name in found} == found


def unfinished_uploads(direct, bucket: str) -> list[str]:
    return [upload["Key"] for upload in direct.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def test_settings_come_from_one_place(monkeypatch):
    monkeypatch.setenv(PART_SIZE_VARIABLE, "5")
    monkeypatch.setenv(TIMEOUT_VARIABLE, "2.5")
    settings = TransferSettings.from_env()
    assert (settings.part_size, settings.timeout, settings.attempts) == (5 * MiB, 2.5, TransferSettings.attempts)
    assert settings.transfer_config().multipart_threshold == 5 * MiB
    assert settings.client_config().read_timeout == 2.5
    monkeypatch.setenv(ATTEMPTS_VARIABLE, "many")
    with pytest.raises(WorldModelsError, match="WORLD_MODELS_S3_ATTEMPTS: 'many' is not a number"):
        TransferSettings.from_env()


# (what is faulted, fault kind, HTTP method, substring of the request target, matching requests let through first)
UPLOAD_FAULTS = [
    ("a part", "drop", "PUT", "partNumber=2", 0),
    ("a part", "stall", "PUT", "partNumber=2", 0),
    ("a part", "cut_request", "PUT", "partNumber=2", 0),
    ("a part", "503", "PUT", "partNumber=3", 0),
    ("the completion", "500", "POST", "uploadId=", 0),
    ("a single PUT", "cut_request", "PUT", "vae.json", 0),
    ("a single PUT", "503", "PUT", "vae.json", 0),
    ("the listing", "truncate", "GET", "list-type=2", 0),
]
DOWNLOAD_FAULTS = [
    ("a range", "truncate", "GET", "episode_000000", 1),
    ("a range", "stall_body", "GET", "episode_000000", 1),
    ("a range", "drop", "GET", "episode_000000", 1),
    ("a range", "500", "GET", "episode_000000", 2),
    ("a single GET", "truncate", "GET", "vae.json", 0),
    ("a single GET", "stall", "GET", "vae.json", 0),
    ("a single GET", "503", "GET", "vae.json", 0),
]


@pytest.mark.parametrize("what, kind, method, contains, skip", UPLOAD_FAULTS,
                         ids=[f"{kind} {what}" for what, kind, *_ in UPLOAD_FAULTS])
def test_push_retries_through_a_fault(proxy, direct, bucket, tree, what, kind, method, contains, skip):
    contents = write_files(tree)
    fault = proxy.inject(kind, method, contains, skip)
    assert push(tree, BucketLocation(bucket)) == {"uploaded": 2, "unchanged": 0, "kept": 0}
    assert fault.hits == 1 and fault.seen > fault.skip + 1  # failed once, then tried again
    assert bucket_contents(direct, bucket) == contents
    assert unfinished_uploads(direct, bucket) == []


@pytest.mark.parametrize("what, kind, method, contains, skip", DOWNLOAD_FAULTS,
                         ids=[f"{kind} {what}" for what, kind, *_ in DOWNLOAD_FAULTS])
def test_pull_retries_through_a_fault(proxy, bucket, tree, tmp_path, what, kind, method, contains, skip):
    contents = write_files(tree)
    push(tree, BucketLocation(bucket))
    fault = proxy.inject(kind, method, contains, skip)
    other = ArtifactTree(tmp_path / "other")
    assert pull(other, BucketLocation(bucket)) == {"downloaded": 2, "unchanged": 0, "kept": 0}
    assert fault.hits == 1 and fault.seen > fault.skip + 1
    assert local_contents(other) == contents


def test_push_that_keeps_failing_leaves_no_object_and_a_rerun_finishes(proxy, direct, bucket, tree, monkeypatch):
    monkeypatch.setenv(ATTEMPTS_VARIABLE, "2")  # fewer back-offs before the error
    contents = write_files(tree)
    # Every try of the large file's middle part is cut off, and so is every abort: the multipart upload
    # can neither complete nor be cleaned up by the failing push itself.
    proxy.inject("cut_request", "PUT", "partNumber=2", times=None)
    proxy.inject("drop", "DELETE", "uploadId=", times=None)
    result = run_script("sync.py", "push", root=tree.root, check=False)
    line = error_line(result)
    assert f"uploading {LARGE}" in line and "re-run the same command" in line
    assert LARGE not in bucket_contents(direct, bucket)
    assert_only_whole_files(bucket_contents(direct, bucket), contents)
    assert unfinished_uploads(direct, bucket) == [LARGE]

    proxy.heal()
    run_script("sync.py", "push", root=tree.root)
    assert bucket_contents(direct, bucket) == contents
    assert unfinished_uploads(direct, bucket) == []  # the earlier push's leftover was aborted


def test_pull_that_keeps_failing_leaves_no_partial_file_and_a_rerun_finishes(proxy, bucket, tree, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv(ATTEMPTS_VARIABLE, "2")
    contents = write_files(tree)
    push(tree, BucketLocation(bucket))
    other = ArtifactTree(tmp_path / "other")
    proxy.inject("truncate", "GET", "episode_000000", times=None)
    line = error_line(run_script("sync.py", "pull", root=other.root, check=False))
    assert f"downloading {LARGE}" in line and "re-run the same command" in line
    assert LARGE not in local_contents(other)
    assert_only_whole_files(local_contents(other), contents)  # no partial file, not even a temporary

    # the same through a stage's --data s3
    proxy.heal()
    proxy.inject("drop", "GET", "episode_000000", times=None)
    with pytest.raises(WorldModelsError, match=f"downloading {LARGE}: .*re-run the same command"):
        fetch_stage_inputs("s3", other, [other.random_rollouts])
    assert_only_whole_files(local_contents(other), contents)

    proxy.heal()
    fetch_stage_inputs("s3", other, [other.random_rollouts, other.vae_models])
    assert local_contents(other) == contents


def test_every_request_failing_gives_one_line(proxy, bucket, tree, tmp_path, monkeypatch):
    monkeypatch.setenv(ATTEMPTS_VARIABLE, "2")
    contents = write_files(tree)
    proxy.inject("503", times=None)
    assert "S3 refused the request (503" in error_line(run_script("sync.py", "push", root=tree.root, check=False))
    proxy.heal()
    proxy.inject("drop", times=None)
    other = ArtifactTree(tmp_path / "other")
    assert "re-run the same command" in error_line(run_script("sync.py", "pull", root=other.root, check=False))
    assert not other.root.exists() or local_contents(other) == {}  # the bucket's check failed first
    proxy.heal()
    run_script("sync.py", "push", root=tree.root)
    run_script("sync.py", "pull", root=other.root)
    assert local_contents(other) == contents


def test_pull_refuses_a_reply_short_of_the_object(proxy, bucket, tree, tmp_path, monkeypatch):
    """Bytes lost with a Content-Length that agrees: only the check against the listing's size and MD5 sees it."""
    monkeypatch.setenv(ATTEMPTS_VARIABLE, "2")
    contents = write_files(tree)
    push(tree, BucketLocation(bucket))
    other = ArtifactTree(tmp_path / "other")
    middle_part = f"bytes={PART_MB * MiB}-"  # a middle part short leaves a hole, not a short file
    proxy.inject("short", "GET", "episode_000000", times=None,
                 when=lambda headers: headers.get("range", "").startswith(middle_part))
    proxy.inject("short", "GET", "vae.json", times=None)
    for name in (SMALL, LARGE):
        with pytest.raises(WorldModelsError, match=f"downloading {name}: "):
            pull(other, BucketLocation(bucket), [name.split("/")[0]])
        assert local_contents(other) == {}
    proxy.heal()
    pull(other, BucketLocation(bucket))
    assert local_contents(other) == contents
