"""CMA-ES, controller sampling and evaluation through the real entry scripts, on tiny settings."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, error_line, run_script
from helpers import save_tiny_agent
from worldmodels.control.evaluation import EvaluationConfig, evaluate_generation
from worldmodels.control.generations import finished_generations
from worldmodels.data.episode import list_episodes, read_tfrecord
from worldmodels.paths import HOME_VARIABLE

TINY_CMA = ("--popsize", "4", "--rollouts", "2", "--episode_length", "25", "--num_process", "2",
            "--eval_every", "2", "--eval_episodes", "2")
GENERATION_FILES = {"population-params.npy", "best-params.npy", "mean-params.npy", "epoch-results.npy",
                    "es-state.json", "es-state.npz", "generation.json"}


@pytest.fixture
def agent_tree(tree):
    save_tiny_agent(tree)
    return tree


def test_one_generation_end_to_end(agent_tree):
    tree = agent_tree
    result = run_script("control/train_controller.py", "--generations", "2", *TINY_CMA, root=tree.root)
    assert "generation 1: mean" in result.stdout and "held-out" in result.stdout
    assert finished_generations(tree) == [0, 1]
    folder = tree.generation(1)
    assert {p.name for p in folder.iterdir()} == GENERATION_FILES
    assert np.load(folder / "population-params.npy").shape == (4, 32 * 3 + 16 * 3 + 3)
    assert np.load(folder / "epoch-results.npy").shape == (4, 2)
    rows = list(csv.DictReader(tree.rewards_log.open()))
    assert [row["generation"] for row in rows] == ["0", "1"]
    assert set(rows[0]) == {"generation", "mean", "best", "worst", "sigma", "seconds", "evaluation", "env_steps"}
    assert int(rows[1]["env_steps"]) == 4 * 2 * 25 + 2 * 25  # population episodes + held-out evaluation
    assert rows[1]["evaluation"] != "" and (tree.best_controller / "best-params.npy").is_file()
    again = run_script("control/train_controller.py", "--generations", "2", *TINY_CMA, root=tree.root)
    assert "nothing to do" in again.stdout


def test_killed_run_resumes_exactly(agent_tree, tmp_path):
    tree = agent_tree
    generations = "6"
    command = [sys.executable, str(REPO / "worldmodels/control/train_controller.py"), "--generations", generations,
               *TINY_CMA]
    process = subprocess.Popen(command, env={**os.environ, HOME_VARIABLE: str(tree.root)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not tree.generation(1).exists():
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # somewhere in generation 2
    process.wait()
    done = finished_generations(tree)
    assert 1 in done and len(done) < 6
    for number in done:  # what has its final name is complete
        assert {p.name for p in tree.generation(number).iterdir()} == GENERATION_FILES
    run_script("control/train_controller.py", "--generations", generations, *TINY_CMA, root=tree.root)
    assert finished_generations(tree) == [0, 1, 2, 3, 4, 5]
    assert not [p for p in tree.generations.iterdir() if p.name.startswith(".tmp")]
    logged = [row["generation"] for row in csv.DictReader(tree.rewards_log.open())]
    assert logged == ["0", "1", "2", "3", "4", "5"]

    fresh = type(tree)(tmp_path / "fresh")
    save_tiny_agent(fresh)
    run_script("control/train_controller.py", "--generations", generations, *TINY_CMA, root=fresh.root)
    for name in ("mean-params.npy", "epoch-results.npy"):
        np.testing.assert_allclose(np.load(tree.generation(5) / name), np.load(fresh.generation(5) / name), rtol=1e-5)


def environment_workers(pid: int) -> list[int]:
    """PIDs of the spawned workers (environments or shards) of process `pid` (not the resource tracker)."""
    children = (Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.mark.parametrize("num_process, killed", [
    pytest.param("2", "environment worker", marks=pytest.mark.slow),  # test_rollout kills these in-process too
    ("5", "worker process died")], ids=["central-model", "shards"])
def test_worker_killed_mid_generation_changes_nothing(agent_tree, tmp_path, num_process, killed):
    """Up to 4 workers one engine runs the models for all; 5 are 5 shards with their own models.  Either
    way a killed worker's episodes are re-run and the run equals an undisturbed one with 1 worker."""
    tree = agent_tree
    command = [sys.executable, str(REPO / "worldmodels/control/train_controller.py"), "--generations", "3", *TINY_CMA,
               "--num_process", num_process]
    process = subprocess.Popen(command, env={**os.environ, HOME_VARIABLE: str(tree.root)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not tree.generation(0).exists():
        time.sleep(0.02)
    os.kill(environment_workers(process.pid)[0], signal.SIGKILL)  # somewhere in generation 1
    assert process.wait(timeout=300) == 0
    assert killed in process.stderr.read()
    fresh = type(tree)(tmp_path / "fresh")
    save_tiny_agent(fresh)
    run_script("control/train_controller.py", "--generations", "3", *TINY_CMA, "--num_process", "1", root=fresh.root)
    for number in range(3):
        for name in ("population-params.npy", "epoch-results.npy", "mean-params.npy"):
            np.testing.assert_array_equal(np.load(tree.generation(number) / name), np.load(fresh.generation(number) / name))


def test_generation_missing_from_the_log_is_logged_on_resume(agent_tree):
    tree = agent_tree
    run_script("control/train_controller.py", "--generations", "2", *TINY_CMA, root=tree.root)
    lines = tree.rewards_log.read_text().splitlines()
    tree.rewards_log.write_text("\n".join(lines[:-1]) + "\n")  # as if killed right after the rename
    run_script("control/train_controller.py", "--generations", "3", *TINY_CMA, root=tree.root)
    rows = list(csv.DictReader(tree.rewards_log.open()))
    assert [row["generation"] for row in rows] == ["0", "1", "2"]


def test_bad_inputs(agent_tree, tmp_path):
    tree = agent_tree
    empty = tmp_path / "empty"
    assert "no trained VAE" in error_line(run_script("control/train_controller.py", *TINY_CMA, root=empty, check=False))
    assert "generations found" in error_line(run_script(
        "data/sample_policy.py", "--policy", "controller", "--episodes", "1", root=tree.root, check=False))
    run_script("control/train_controller.py", "--generations", "1", *TINY_CMA, root=tree.root)
    assert "generation 5 does not exist; newest is 0" in error_line(run_script(
        "data/sample_policy.py", "--policy", "controller", "--generation", "5", root=tree.root, check=False))
    assert "no evaluated controller" in error_line(run_script(
        "control/evaluate_controller.py", "--generation", "best", root=tree.root, check=False))
    (tree.generation(0) / "es-state.json").write_text('{"format": "garbage')
    result = run_script("control/train_controller.py", "--generations", "2", *TINY_CMA, root=tree.root, check=False)
    assert "es-state.json: corrupt optimizer state" in error_line(result)
    assert (tree.generation(0) / "best-params.npy").is_file()  # nothing lost
    changed = run_script("control/train_controller.py", "--generations", "2", *TINY_CMA[:-6], "--popsize", "6",
                         root=tree.root, check=False)
    assert "cannot resume with changed flags" in error_line(changed)
    (tree.vae_models / "vae.weights.h5").write_bytes(b"broken")
    assert "vae.weights.h5: cannot load" in error_line(run_script(
        "control/evaluate_controller.py", "--generation", "0", root=tree.root, check=False))


def test_sampling_evaluation_and_second_generation(agent_tree):
    tree = agent_tree
    run_script("control/train_controller.py", "--generations", "1", *TINY_CMA, root=tree.root)
    sample = ("--episode_length", "20", "--num_process", "2", "--episodes", "2")
    result = run_script("data/sample_policy.py", "--policy", "controller", "--dtype", "numpy", *sample,
                        "--generation", "0", root=tree.root)
    assert "sampled 2 episodes with generation 0" in result.stdout
    folders = sorted(tree.controller_samples_root.iterdir())
    assert len(folders) == 2
    arrays = {p.stem: np.load(p) for p in folders[0].iterdir()}
    assert arrays["observations"].shape == arrays["reconstructions"].shape == (20, 64, 64, 3)
    assert arrays["latents"].shape == arrays["predicted_latents"].shape == arrays["logvar"].shape == (20, 32)
    assert arrays["actions"].shape == (20, 3) and arrays["rewards"].shape == (20,)

    run_script("data/sample_policy.py", "--policy", "controller", "--dtype", "tfrecord", *sample, root=tree.root)
    episodes = list_episodes(tree.controller_rollouts)
    assert len(episodes) == 2 and read_tfrecord(episodes[0]).length == 20

    evaluation = run_script("control/evaluate_controller.py", "--generation", "max", "--episodes", "3",
                            "--episode_length", "20", "--num_process", "2", root=tree.root)
    assert "generation 0:" in evaluation.stdout and "+-" in evaluation.stdout and "over 3 episodes" in evaluation.stdout

    # The upstream second generation: V, latent stats and M on controller data, then CMA-ES again.
    run_script("vision/train_vae.py", "--load_model", "0", "--data", "local", "--epochs", "1", "--dataset", "controller",
               "--batch_size", "8", "--shuffle_buffer", "50", root=tree.root)
    encoded = run_script("data/sample_latent_stats.py", "--episode_start", "0", "--episodes", "2", "--data", "local",
                         "--dataset", "controller", root=tree.root)
    assert "encoded 2 episodes" in encoded.stdout
    run_script("memory/train_memory.py", "--load_model", "0", "--epochs", "1", "--hidden_units", "16", root=tree.root)
    second = run_script("control/train_controller.py", "--generations", "1", *TINY_CMA, root=tree.root)
    assert "moved to" in second.stdout  # the first run is kept aside, not mixed with the new V and M
    assert finished_generations(tree) == [0]
    assert len(list((tree.root / "control-archive").iterdir())) == 1


def test_early_stopping_shortens_training_episodes_never_evaluations(agent_tree):
    tree = agent_tree
    run_script("control/train_controller.py", "--generations", "2", *TINY_CMA[:-4], "--episode_length", "60",
               "--eval_every", "2", "--eval_episodes", "2", "--max_idle_steps", "1", root=tree.root)
    rows = list(csv.DictReader(tree.rewards_log.open()))
    assert int(rows[0]["env_steps"]) < 4 * 2 * 60  # an untrained driver leaves the track: episodes cut short
    evaluations = list(csv.DictReader((tree.control / "evaluations.log").open()))
    assert [int(row["env_steps"]) for row in evaluations] == [2 * 60]  # held-out episodes ran in full
    result = run_script("control/evaluate_controller.py", "--generation", "max", "--episodes", "2",
                        "--episode_length", "60", "--num_process", "2", root=tree.root)
    summary = json.loads(next(tree.evaluations.glob("*.json")).read_text())
    assert summary["lengths"] == [60, 60] and "over 2 episodes" in result.stdout
    stock = evaluate_generation(EvaluationConfig(episodes=2, episode_length=60, num_process=1, env_id="CarRacing-v3"),
                                tree)  # the stock renderer's score goes beside the default one, not over it
    assert Path(stock["file"]).name == "generation_1_seed_0_episodes_2_CarRacing-v3.json"
    assert len(list(tree.evaluations.glob("*.json"))) == 2
    best = evaluate_generation(EvaluationConfig(generation="best", episodes=1, episode_length=20, num_process=1), tree)
    assert best["generation"] == "best" and best["best_generation"] == 1  # the mean evaluated at generation 1


def test_warm_start_from_a_generation_archives_the_old_run_and_resumes_itself(agent_tree):
    tree = agent_tree
    run_script("control/train_controller.py", "--generations", "1", *TINY_CMA, root=tree.root)
    start = np.load(tree.generation(0) / "mean-params.npy")
    warm = ("--init_from", "0", "--sigma", "1e-6")
    result = run_script("control/train_controller.py", "--generations", "1", *TINY_CMA, *warm, root=tree.root)
    assert "moved to" in result.stdout and "CMA-ES starts from" in result.stdout
    archived = next((tree.root / "control-archive").iterdir())
    np.testing.assert_array_equal(np.load(archived / "generations/generation_0/mean-params.npy"), start)
    population = np.load(tree.generation(0) / "population-params.npy")
    np.testing.assert_allclose(population, np.broadcast_to(start, population.shape), atol=1e-4)
    again = run_script("control/train_controller.py", "--generations", "2", *TINY_CMA, *warm, root=tree.root)
    assert "moved to" not in again.stdout and finished_generations(tree) == [0, 1]  # the same command resumes
    assert len(list((tree.root / "control-archive").iterdir())) == 1


@pytest.mark.parametrize("kind", ["npy", "generation folder", "artifact tree", "wrong size"])
def test_warm_start_sources(agent_tree, tmp_path, kind):
    from worldmodels.control.warm_start import resolve_initial_params
    from worldmodels.paths import ArtifactTree

    tree = agent_tree
    params = np.random.default_rng(0).normal(size=147).astype(np.float32)
    other = ArtifactTree(tmp_path / "other")
    if kind == "npy":
        spec = tmp_path / "params.npy"
        np.save(spec, params)
    elif kind == "generation folder":
        spec = tmp_path / "generation_7"
        spec.mkdir()
        np.save(spec / "mean-params.npy", params)
        np.save(spec / "best-params.npy", params + 1)
    elif kind == "artifact tree":  # e.g. where pretrained.sh installed an archive: its best evaluated controller
        other.best_controller.mkdir(parents=True)
        np.save(other.best_controller / "best-params.npy", params)
        spec = other.root
    else:
        spec = tmp_path / "small.npy"
        np.save(spec, params[:10])
        result = run_script("control/train_controller.py", "--generations", "1", *TINY_CMA, "--init_from", str(spec),
                            root=tree.root, check=False)
        assert "--init_from" in error_line(result) and "small.npy" in error_line(result)
        return
    loaded, _ = resolve_initial_params(tree, str(spec))
    np.testing.assert_array_equal(loaded, params)
    run_script("control/train_controller.py", "--generations", "1", *TINY_CMA, "--init_from", str(spec), "--sigma",
               "1e-6", root=tree.root)
    population = np.load(tree.generation(0) / "population-params.npy")
    np.testing.assert_allclose(population, np.broadcast_to(params, population.shape), atol=1e-4)
