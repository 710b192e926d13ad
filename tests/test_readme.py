"""The README is the reference: every flag of every stage is documented, and CI runs its test command."""

import dataclasses
import re

import pytest

from conftest import REPO
from worldmodels.control.evaluation import EvaluationConfig
from worldmodels.control.training import ControllerTrainingConfig
from worldmodels.data.latent_stats import LatentStatsConfig
from worldmodels.data.sampling import SamplingConfig
from worldmodels.memory.training import MemoryTrainingConfig
from worldmodels.quickstart import QuickstartConfig
from worldmodels.vision.training import VAETrainingConfig

README = (REPO / "README.md").read_text()


@pytest.mark.parametrize("config_cls", [SamplingConfig, VAETrainingConfig, LatentStatsConfig, MemoryTrainingConfig,
                                        ControllerTrainingConfig, EvaluationConfig, QuickstartConfig])
def test_every_flag_is_documented(config_cls):
    missing = [field.name for field in dataclasses.fields(config_cls) if f"`--{field.name}`" not in README]
    assert not missing, f"{config_cls.__name__} flags missing from README.md: {missing}"


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"^(pip install -e \"\.\[cpu,test\]\" && python -m pytest)$", README, re.MULTILINE)
    assert commands, "README.md lost its test command"
    assert commands[0] in (REPO / ".ci" / "run").read_text()
