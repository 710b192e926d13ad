"""Averaged CMA-ES means: the average of the chosen generations, shipped as the best controller by export."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from conftest import error_line, run_script
from helpers import train_tiny_controller
from worldmodels.control.generations import average_means, parse_generation_span
from worldmodels.errors import WorldModelsError


@pytest.fixture(scope="module")
def three_generations(tmp_path_factory):
    from worldmodels.paths import ArtifactTree

    tree = ArtifactTree(tmp_path_factory.mktemp("average") / "experiments")
    train_tiny_controller(tree, generations=3)
    return tree


def test_average_of_the_chosen_generations_means(three_generations, tmp_path):
    tree = three_generations
    output = tmp_path / "averaged.npy"
    result = run_script("control/average_means.py", "--generations", "1-2", "--output", str(output), root=tree.root)
    assert "generations 1-2" in result.stdout
    means = [np.load(tree.generation(number) / "mean-params.npy") for number in (1, 2)]
    assert not np.array_equal(means[0], means[1])  # CMA-ES moved: the average is neither of them
    np.testing.assert_allclose(np.load(output), (means[0] + means[1]) / 2, rtol=1e-6)
    assert np.load(output).dtype == means[0].dtype

    missing = run_script("control/average_means.py", "--generations", "2-5", "--output", str(tmp_path / "x.npy"),
                         root=tree.root, check=False)
    assert "generation 3 does not exist" in error_line(missing)
    assert not (tmp_path / "x.npy").exists()


@pytest.mark.parametrize("text, expected", [("12-15", [12, 13, 14, 15]), ("9", [9]), ("15-12", None), ("a-3", None), ("5-", None)])
def test_generation_spans(text, expected):
    if expected is None:
        with pytest.raises(WorldModelsError, match="FIRST-LAST"):
            parse_generation_span(text)
    else:
        assert parse_generation_span(text) == expected


def test_export_ships_chosen_params_as_the_best_controller(three_generations, tmp_path):
    tree = three_generations
    chosen = tmp_path / "averaged-0-2-params.npy"
    run_script("control/average_means.py", "--generations", "0-2", "--output", str(chosen), root=tree.root)
    archive = tmp_path / "agent.tar.gz"
    result = run_script("pretrained.py", "export", "--generation", "2", "--best_params", str(chosen), "--output",
                        str(archive), root=tree.root)
    assert "exported generation 2" in result.stdout
    with tarfile.open(archive) as opened:
        assert opened.extractfile("control/best/best-params.npy").read() == chosen.read_bytes()
        assert json.loads(opened.extractfile("control/best/best.json").read()) == {
            "generation": 2, "params": chosen.name}
        assert "control/generations/generation_2/mean-params.npy" in opened.getnames()

    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros(5, np.float32))
    refused = run_script("pretrained.py", "export", "--generation", "2", "--best_params", str(wrong), "--output",
                         str(tmp_path / "refused.tar.gz"), root=tree.root, check=False)
    assert "--best_params" in error_line(refused) and "5 parameters" in error_line(refused)
    assert not (tmp_path / "refused.tar.gz").exists()


def test_means_of_different_runs_are_refused(tree):
    for number, size in ((0, 3), (1, 4)):  # e.g. a [z, h] run's generation beside a dashboard run's
        folder = tree.generation(number)
        folder.mkdir(parents=True)
        np.save(folder / "mean-params.npy", np.zeros(size, np.float32))
    with pytest.raises(WorldModelsError, match=r"different sizes \(\[3, 4\]\): not one CMA-ES run"):
        average_means(tree, [0, 1])
