"""The README's first command, end to end on an even smaller budget than its default."""

import json
import subprocess
import sys

from conftest import REPO
from worldmodels.paths import ArtifactTree


def test_quickstart_runs_the_whole_pipeline(tmp_path):
    root = tmp_path / "quickstart"
    command = [sys.executable, "-m", "worldmodels.quickstart", "--root", str(root), "--num_process", "2",
               "--episodes", "2", "--episode_length", "30", "--vae_epochs", "1", "--memory_epochs", "2",
               "--generations", "2", "--popsize", "4", "--rollouts", "1", "--eval_episodes", "2"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    tree = ArtifactTree(root)
    for stage in ("1/6", "2/6", "3/6", "4/6", "5/6", "6/6"):
        assert f"] {stage} " in result.stdout
    assert "evaluation: generation 1 scores" in result.stdout
    evaluation = json.loads(next(tree.evaluations.glob("*.json")).read_text())
    assert evaluation["episodes"] == 2 and len(evaluation["scores"]) == 2
    gif = tree.control / "quickstart-agent.gif"
    assert gif.is_file() and gif.stat().st_size > 1000 and str(gif) in result.stdout
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "(2 already complete)" in again.stdout  # re-running resumes
