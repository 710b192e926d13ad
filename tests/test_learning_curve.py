"""The learning curve is drawn from a run's own logs: stages before CMA-ES shift it, evaluations make its points."""

import csv

import pytest

from worldmodels.errors import WorldModelsError
from worldmodels.learning_curve import STAGE_COLUMNS, main, read_curve
from worldmodels.control.training import REWARD_COLUMNS


def write_rows(path, columns, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)


def test_points_accumulate_stage_and_generation_costs(tree, tmp_path, capsys):
    with pytest.raises(WorldModelsError, match="no CMA-ES log"):
        read_curve(tree)
    write_rows(tree.root / "stages.csv", STAGE_COLUMNS, [{"stage": "sampling", "seconds": 1800, "env_steps": 300000},
                                                         {"stage": "vae", "seconds": 1800, "env_steps": 0}])
    generation = {"mean": 1, "best": 2, "worst": 0, "sigma": 0.1}
    write_rows(tree.rewards_log, REWARD_COLUMNS, [
        {**generation, "generation": 0, "seconds": 360, "evaluation": "", "env_steps": 50000},
        {**generation, "generation": 1, "seconds": 360, "evaluation": "512.5", "env_steps": 70000},
        {**generation, "generation": 2, "seconds": 720, "evaluation": "", "env_steps": 40000}])
    points = read_curve(tree)
    assert points == [{"generation": 1, "score": 512.5, "hours": 1.2, "env_steps": 420000}]
    output = tmp_path / "docs" / "curve.png"
    main(["--root", str(tree.root), "--output", str(output)])
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "best 512.5 at generation 1 (1.20 h, 0.42M env steps)" in capsys.readouterr().out


def test_a_warm_started_phase_continues_the_archived_run(tree):
    generation = {"mean": 1, "best": 2, "worst": 0, "sigma": 0.1}
    write_rows(tree.root / "control-archive" / "20261126-020000" / "rewards.log", REWARD_COLUMNS, [
        {**generation, "generation": 0, "seconds": 1800, "evaluation": "300", "env_steps": 100000},
        {**generation, "generation": 1, "seconds": 1800, "evaluation": "", "env_steps": 100000}])
    write_rows(tree.rewards_log, REWARD_COLUMNS, [
        {**generation, "generation": 0, "seconds": 3600, "evaluation": "700", "env_steps": 200000}])
    assert read_curve(tree) == [{"generation": 0, "score": 300.0, "hours": 0.5, "env_steps": 100000},
                                {"generation": 2, "score": 700.0, "hours": 2.0, "env_steps": 400000}]
