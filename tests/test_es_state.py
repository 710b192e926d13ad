"""The CMA-ES state on disk: a resumed optimizer continues bit for bit, and hostile files never run code."""

import json
import pickle

import numpy as np
import pytest

from worldmodels.control.es_state import ARRAYS_NAME, JSON_NAME, load_es_state, new_optimizer, save_es_state
from worldmodels.control.generations import LEGACY_STATE_NAME, load_state, write_generation
from worldmodels.errors import WorldModelsError
from worldmodels.files import write_json_atomic


class Payload:
    """Unpickling it creates `marker`: proof that a loader ran code from a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def generation(es, number: int) -> np.ndarray:
    """One ask / tell, seeded per generation as training does."""
    np.random.seed(1000 + number)
    solutions = es.ask()
    es.tell(solutions, [float(np.sum(x ** 2) + np.sin(7 * x[0])) for x in solutions])
    return np.array(solutions)


def saved_state(folder):
    """Files as training writes them, minus timers (wall-clock times differ between two optimizers)."""
    document = json.loads((folder / JSON_NAME).read_text())

    def without_timers(node):
        if isinstance(node, dict):
            if node.get("object") == "cma.utilities.utils.ElapsedWCTime":
                return "timer"
            return {key: without_timers(value) for key, value in node.items()}
        return [without_timers(value) for value in node] if isinstance(node, list) else node

    with np.load(folder / ARRAYS_NAME) as arrays:
        return without_timers(document), {key: arrays[key] for key in arrays.files}


@pytest.mark.parametrize("dimension, popsize, before, after, covariance",
                         [(20, 4, 6, 8, "full"), (20, 8, 6, 8, "full"), (867, 5, 2, 3, "full"),
                          (867, 16, 3, 3, "diagonal")])
def test_resumed_optimizer_continues_bit_for_bit(tmp_path, dimension, popsize, before, after, covariance):
    straight, resumed = (new_optimizer(np.zeros(dimension), 0.1, popsize, covariance) for _ in range(2))
    for number in range(before):
        generation(straight, number), generation(resumed, number)
    save_es_state(resumed, tmp_path)
    resumed = load_es_state(tmp_path)
    assert resumed.countiter == straight.countiter == before and resumed.sigma == straight.sigma
    np.testing.assert_array_equal(resumed.mean, straight.mean)
    for field in ("xbest", "fbest", "evals_best", "evaluations", "iterations", "xfavorite", "stds"):
        np.testing.assert_array_equal(getattr(resumed.result, field), getattr(straight.result, field))
    for number in range(before, before + after):
        np.testing.assert_array_equal(generation(resumed, number), generation(straight, number))
    for name in ("mean", "pc"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name))
    assert resumed.sigma == straight.sigma and resumed.countiter == straight.countiter
    if covariance == "full":
        np.testing.assert_array_equal(resumed.sm.C, straight.sm.C)
        assert resumed.C is resumed.sm.C  # shared references stay shared
    for name, es in (("a", straight), ("b", resumed)):
        (tmp_path / name).mkdir()
        save_es_state(es, tmp_path / name)
    (document_a, arrays_a), (document_b, arrays_b) = saved_state(tmp_path / "a"), saved_state(tmp_path / "b")
    assert document_a == document_b and arrays_a.keys() == arrays_b.keys()
    for key, array in arrays_a.items():
        assert array.dtype == arrays_b[key].dtype
        np.testing.assert_array_equal(array, arrays_b[key])


@pytest.fixture
def state(tmp_path):
    es = new_optimizer(np.zeros(6), 0.1, 4)
    generation(es, 0)
    save_es_state(es, tmp_path)
    return tmp_path


def edit_json(folder, old: str, new: str) -> None:
    text = (folder / JSON_NAME).read_text()
    assert old in text
    (folder / JSON_NAME).write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("old, new, problem", [
    ('"cma.sampler.GaussFullSampler"', '"os.system"', "class 'os.system' is not whitelisted"),
    ('"cma.evolution_strategy.CMAEvolutionStrategy"', '"subprocess.Popen"',
     "class 'subprocess.Popen' is not whitelisted"),
    ('"worldmodels.control.es_state.global_randn"', '"builtins.exec"', "function 'builtins.exec' is not whitelisted"),
    ('{"ref": ', '{"ref": 99999, "x": ', "reference to undefined object 99999"),
    ('"attrs": {', '"attrs": [], "y": {', "dict expected, found list"),
    ('"array": "a0"', '"array": "missing"', "array 'missing' missing"),
])
def test_hostile_or_damaged_json_is_refused(state, old, new, problem):
    edit_json(state, old, new)
    with pytest.raises(WorldModelsError, match="corrupt optimizer state") as error:
        load_es_state(state)
    assert problem in str(error.value) and "\n" not in str(error.value)
    assert (JSON_NAME if "array" not in problem else ARRAYS_NAME) in str(error.value)


def test_truncated_json_and_missing_arrays_are_refused(state):
    data = (state / ARRAYS_NAME).read_bytes()
    (state / ARRAYS_NAME).write_bytes(data[:len(data) // 2])
    with pytest.raises(WorldModelsError, match=f"{ARRAYS_NAME}: corrupt optimizer state \\(unreadable"):
        load_es_state(state)
    (state / ARRAYS_NAME).unlink()
    with pytest.raises(WorldModelsError, match=f"{ARRAYS_NAME}: optimizer state missing"):
        load_es_state(state)
    text = (state / JSON_NAME).read_text()
    (state / JSON_NAME).write_text(text[:len(text) // 2])
    with pytest.raises(WorldModelsError, match=f"{JSON_NAME}: corrupt optimizer state \\(invalid JSON"):
        load_es_state(state)
    (state / JSON_NAME).write_text('["not", "a", "state"]')
    with pytest.raises(WorldModelsError, match=f"{JSON_NAME}: corrupt optimizer state \\(not a "):
        load_es_state(state)


def test_pickled_array_is_refused_without_running_it(state, tmp_path):
    marker = tmp_path / "pwned"
    with np.load(state / ARRAYS_NAME) as arrays:
        contents = {key: arrays[key] for key in arrays.files}
    contents["a0"] = np.array([Payload(marker)], dtype=object)
    np.savez(state / ARRAYS_NAME, allow_pickle=True, **contents)
    with pytest.raises(WorldModelsError, match=f"{ARRAYS_NAME}: corrupt optimizer state") as error:
        load_es_state(state)
    assert "\n" not in str(error.value) and not marker.exists()
    (state / ARRAYS_NAME).write_bytes(pickle.dumps(Payload(marker)))  # a bare pickle under the npz name
    with pytest.raises(WorldModelsError, match=f"{ARRAYS_NAME}: corrupt optimizer state"):
        load_es_state(state)
    assert not marker.exists()


def test_generation_folder_round_trip(tree):
    es = new_optimizer(np.zeros(6), 0.1, 4)
    generation(es, 0)
    folder = write_generation(tree, 0, {"mean-params": np.asarray(es.mean, np.float32)}, es, {"sigma": es.sigma})
    assert {path.name for path in folder.iterdir()} == {"mean-params.npy", JSON_NAME, ARRAYS_NAME, "generation.json"}
    np.testing.assert_array_equal(load_state(tree, 0).mean, es.mean)


def test_legacy_pickle_is_never_loaded(tree, tmp_path, capsys):
    marker = tmp_path / "pwned"
    folder = tree.generation(3)
    folder.mkdir(parents=True)
    mean = np.linspace(-1, 1, 6).astype(np.float32)
    np.save(folder / "mean-params.npy", mean)
    write_json_atomic(folder / "generation.json", {"generation": 3, "sigma": 0.05})
    write_json_atomic(tree.control / "config.json", {"popsize": 4})
    (folder / LEGACY_STATE_NAME).write_bytes(pickle.dumps(Payload(marker)))
    es = load_state(tree, 3)
    assert not marker.exists()
    out = capsys.readouterr().out
    assert out.startswith("note: ") and out.count("\n") == 1 and "old pickle format" in out and LEGACY_STATE_NAME in out
    np.testing.assert_array_equal(es.mean, mean.astype(np.float64))
    assert es.sigma == 0.05 and es.popsize == 4
    assert generation(es, 4).shape == (4, 6)
