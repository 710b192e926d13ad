"""The AWS cluster file passes Ray's own config validation (offline: schema and node-type checks)."""

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
pytest.importorskip("ray", reason="the [ray] extra is not installed")
from ray.autoscaler._private.util import prepare_config, validate_config  # noqa: E402

CLUSTER = Path(__file__).resolve().parents[1] / "cluster" / "aws.yaml"


def load() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


def test_the_cluster_file_is_valid_and_uses_the_set_up_scripts():
    config = prepare_config(load())
    validate_config(config)
    assert config["available_node_types"]["head"]["resources"] == {"CPU": 0}  # rollouts stay off the driver
    assert any("gym-setup.sh" in command and "ray" in command for command in config["setup_commands"])


@pytest.mark.parametrize("breakage", ["unknown key", "bad head type", "too many min workers"])
def test_the_validation_catches_a_broken_file(breakage):
    config = load()
    if breakage == "unknown key":
        config["head_nodes"] = 1
    elif breakage == "bad head type":
        config["head_node_type"] = "gpu_head"
    else:
        config["available_node_types"]["cpu_worker"]["min_workers"] = config["max_workers"] + 1
    with pytest.raises(Exception):
        validate_config(prepare_config(config))
