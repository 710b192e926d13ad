"""S3 sync against a real S3-compatible server (moto in server mode) on loopback, never a patched boto3."""

from __future__ import annotations

import os

import boto3
import numpy as np
import pytest

from conftest import error_line, run_script
from helpers import synthetic_episode
from worldmodels.data.episode import write_tfrecord
from worldmodels.errors import WorldModelsError
from worldmodels.paths import ArtifactTree
from worldmodels.s3 import BucketLocation, pull, push


def keys(bucket_name: str) -> set[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket_name)
    return {item["Key"] for item in listing.get("Contents", [])}


def test_push_pull_only_new_or_changed(tree, bucket, tmp_path):
    write_tfrecord(tree.random_rollouts / "episode_000000.tfrecord", synthetic_episode(5))
    (tree.vae_models).mkdir(parents=True)
    (tree.vae_models / "vae.json").write_text('{"latent_dim": 32}')
    (tree.vae_models / ".tmp-1234-vae.weights.h5").write_bytes(b"half written")
    location = BucketLocation(bucket, "runs/a")

    assert push(tree, location) == {"uploaded": 2, "unchanged": 0, "kept": 0}
    # The bucket holds the tree as it is, so `aws s3 sync` sees the same layout.
    assert keys(bucket) == {"runs/a/random-rollouts/episode_000000.tfrecord", "runs/a/vae-training/models/vae.json"}
    assert push(tree, location) == {"uploaded": 0, "unchanged": 2, "kept": 0}
    (tree.vae_models / "vae.json").write_text('{"latent_dim": 16}')
    assert push(tree, location) == {"uploaded": 1, "unchanged": 1, "kept": 0}

    other = ArtifactTree(tmp_path / "other")
    assert pull(other, location, ["vae-training"]) == {"downloaded": 1, "unchanged": 0, "kept": 0}
    assert (other.vae_models / "vae.json").read_text() == '{"latent_dim": 16}'
    assert not other.random_rollouts.exists()
    assert pull(other, location) == {"downloaded": 1, "unchanged": 1, "kept": 0}
    assert (other.random_rollouts / "episode_000000.tfrecord").read_bytes() == \
        (tree.random_rollouts / "episode_000000.tfrecord").read_bytes()

    # Progress made here since the last push is never overwritten by the bucket's older copy ...
    local = other.vae_models / "vae.json"
    local.write_text('{"latent_dim": 16, "edited": "here"}')
    assert pull(other, location, ["vae-training/models"]) == {"downloaded": 0, "unchanged": 0, "kept": 1}
    assert "edited" in local.read_text()
    # ... while a local copy older than the bucket's is brought up to date.
    os.utime(local, (1_000_000_000, 1_000_000_000))
    assert pull(other, location, ["vae-training/models"]) == {"downloaded": 1, "unchanged": 0, "kept": 0}
    assert local.read_text() == '{"latent_dim": 16}'
    # and a push does not overwrite a bucket object that is newer than the local file
    stale = tree.vae_models / "vae.json"
    stale.write_text("an old edit")
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    assert push(tree, location, ["vae-training"]) == {"uploaded": 0, "unchanged": 0, "kept": 1}


def test_sync_script_and_train_from_a_pulled_tree(tree, bucket, tmp_path):
    from worldmodels.data.sampling import SamplingConfig, sample_random

    sample_random(SamplingConfig(num_process=1, total_episodes=2, episode_length=20), tree)
    pushed = run_script("sync.py", "push", "--bucket", bucket, "--folders", "random-rollouts", root=tree.root)
    assert "2 uploaded" in pushed.stdout
    fresh = ArtifactTree(tmp_path / "gpu-box")
    trained = run_script("vision/train_vae.py", "--data", "s3", "--epochs", "1", "--batch_size", "10",
                         "--shuffle_buffer", "40", root=fresh.root)
    assert "2 downloaded" in trained.stdout and "trained VAE: 1 epochs" in trained.stdout
    run_script("sync.py", "push", "--folders", "vae-training", root=fresh.root)  # bucket from $WORLD_MODELS_BUCKET
    cpu_box = ArtifactTree(tmp_path / "cpu-box")
    encoded = run_script("data/sample_latent_stats.py", "--data", "s3", "--episodes", "2", root=cpu_box.root)
    assert "encoded 2 episodes" in encoded.stdout
    assert np.load(cpu_box.latent_stats / "random" / "episode_000001.npz")["mu"].shape == (20, 32)


def test_clear_errors_for_missing_bucket_and_credentials(tree, bucket, monkeypatch, tmp_path):
    with pytest.raises(WorldModelsError, match="bucket 'no-such-bucket' does not exist"):
        push(tree, BucketLocation("no-such-bucket"))
    result = run_script("sync.py", "pull", "--bucket", "no-such-bucket", root=tree.root, check=False)
    assert "does not exist" in error_line(result)
    no_credentials = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
                      "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none")}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    result = run_script("sync.py", "push", root=tree.root, check=False,
                        extra_env={k: v for k, v in no_credentials.items() if v})
    assert "no AWS credentials found" in error_line(result)
    assert "is not a folder of the artifact tree" in error_line(
        run_script("sync.py", "push", "--folders", "../etc", root=tree.root, check=False))
