"""`--backend ray` against a real Ray head on loopback: the same files and scores as the local backend."""

import json

import numpy as np
import pytest

from conftest import run_script
from helpers import save_tiny_agent
from ray_cluster import require_namespaces, run_with_ray_head, stage_command
from worldmodels.control.generations import finished_generations
from worldmodels.data.episode import list_episodes
from worldmodels.data.latent_stats import list_latents, read_latents
from worldmodels.paths import ArtifactTree

pytest.importorskip("ray", reason="the [ray] extra is not installed")

CMA = ("--popsize", "4", "--rollouts", "2", "--episode_length", "40", "--eval_every", "2", "--eval_episodes", "2",
       "--max_idle_steps", "15")
SAMPLE = ("--policy", "random", "--episodes", "3", "--episode_length", "30")
CONTROLLER_SAMPLE = ("--policy", "controller", "--dtype", "numpy", "--episodes", "2", "--episode_length", "20",
                     "--start_episode", "5")
EVALUATE = ("--generation", "max", "--episodes", "3", "--episode_length", "30")
ENCODE = ("--episode_start", "0", "--episodes", "3", "--data", "local")
RAY = ("--backend", "ray", "--address", "$ADDRESS", "--num_process", "2")
GENERATION_ARRAYS = ("population-params.npy", "best-params.npy", "mean-params.npy", "epoch-results.npy")


@pytest.fixture(scope="module")
def local_cma(tmp_path_factory) -> ArtifactTree:
    """CMA-ES on the local backend, one worker: the reference every Ray run must equal."""
    tree = ArtifactTree(tmp_path_factory.mktemp("local") / "experiments")
    save_tiny_agent(tree)
    run_script("control/train_controller.py", "--generations", "3", *CMA, "--num_process", "1", root=tree.root)
    return tree


def assert_same_generations(tree: ArtifactTree, reference: ArtifactTree) -> None:
    assert finished_generations(tree) == finished_generations(reference) == [0, 1, 2]
    for number in range(3):
        for name in GENERATION_ARRAYS:
            np.testing.assert_array_equal(np.load(tree.generation(number) / name),
                                          np.load(reference.generation(number) / name), err_msg=name)
        with np.load(tree.generation(number) / "es-state.npz") as state, \
                np.load(reference.generation(number) / "es-state.npz") as expected:  # CMA-ES's arrays (its JSON has timers)
            assert sorted(state.files) == sorted(expected.files) and state.files
            for name in state.files:
                np.testing.assert_array_equal(state[name], expected[name], err_msg=name)


@pytest.mark.slow
def test_every_stage_through_ray_equals_the_local_backend(local_cma, tmp_path):
    require_namespaces()
    local_run = local_cma  # and the other stages, locally, on the same tree
    run_script("data/sample_policy.py", *SAMPLE, "--num_process", "1", root=local_run.root)
    run_script("data/sample_latent_stats.py", *ENCODE, "--num_process", "1", root=local_run.root)
    run_script("control/evaluate_controller.py", *EVALUATE, "--num_process", "1", root=local_run.root)
    run_script("data/sample_policy.py", *CONTROLLER_SAMPLE, "--num_process", "1", root=local_run.root)
    tree = ArtifactTree(tmp_path / "experiments")
    save_tiny_agent(tree)
    body = "\n".join([
        stage_command("data/sample_policy.py", *SAMPLE, *RAY),
        stage_command("data/sample_latent_stats.py", *ENCODE, *RAY),
        stage_command("control/train_controller.py", "--generations", "3", *CMA, *RAY),
        stage_command("control/evaluate_controller.py", *EVALUATE, *RAY),
        stage_command("data/sample_policy.py", *CONTROLLER_SAMPLE, *RAY),
    ])
    result = run_with_ray_head(body, tree.root)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]

    episodes, expected = list_episodes(tree.random_rollouts), list_episodes(local_run.random_rollouts)
    assert [p.name for p in episodes] == [p.name for p in expected] and len(episodes) == 3
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(episodes, expected))
    latents, expected = list_latents(tree.latent_stats / "random"), list_latents(local_run.latent_stats / "random")
    assert len(latents) == len(expected) == 3
    for a, b in zip(latents, expected):
        for x, y in zip(read_latents(a)[:-1], read_latents(b)[:-1]):  # not vae_id: each tree saved its own file
            np.testing.assert_array_equal(x, y)
    assert_same_generations(tree, local_cma)
    scores, expected = (json.loads(next(t.evaluations.glob("*.json")).read_text()) for t in (tree, local_run))
    assert scores["scores"] == expected["scores"] and scores["lengths"] == expected["lengths"]
    folders = sorted(tree.controller_samples_root.iterdir())
    assert [f.name for f in folders] == [f.name for f in sorted(local_run.controller_samples_root.iterdir())]
    for folder in folders:
        for array in folder.iterdir():
            np.testing.assert_array_equal(np.load(array), np.load(local_run.controller_samples_root / folder.name /
                                                                  array.name), err_msg=str(array))


def test_actor_killed_mid_generation_changes_nothing(local_cma, tmp_path):
    require_namespaces()
    tree = ArtifactTree(tmp_path / "experiments")
    save_tiny_agent(tree)
    train = stage_command("control/train_controller.py", "--generations", "3", *CMA, *RAY)
    body = f"""{train} 2> {tmp_path}/stderr.log &
stage=$!
until [ -d {tree.generation(0)} ] || ! kill -0 $stage 2>/dev/null; do sleep 0.05; done
pkill -KILL -f '^ray::_RayWorker' -o  # the oldest actor process, somewhere in generation 1
wait $stage
"""
    result = run_with_ray_head(body, tree.root)
    stderr = (tmp_path / "stderr.log").read_text()
    assert result.returncode == 0, result.stderr[-2000:] + stderr[-3000:]
    assert "Ray actor died" in stderr and "run again" in stderr
    assert_same_generations(tree, local_cma)
