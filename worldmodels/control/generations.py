"""CMA-ES generations on disk: one folder per finished generation, renamed into place when complete."""

from __future__ import annotations

from typing import TYPE_CHECKING

import re
from pathlib import Path

import numpy as np

from worldmodels.errors import WorldModelsError
from worldmodels.files import atomic_folder, read_json, write_json_atomic
from worldmodels.paths import ArtifactTree

if TYPE_CHECKING:
    import cma

GENERATION_PATTERN = re.compile(r"^generation_(\d+)$")
LEGACY_STATE_NAME = "es-state.pkl"  # written by earlier versions; never unpickled


def finished_generations(tree: ArtifactTree) -> list[int]:
    if not tree.generations.is_dir():
        return []
    numbers = (GENERATION_PATTERN.match(path.name) for path in tree.generations.iterdir())
    return sorted(int(match.group(1)) for match in numbers if match)


def write_generation(tree: ArtifactTree, number: int, arrays: dict[str, np.ndarray], es: "cma.CMAEvolutionStrategy",
                     summary: dict) -> Path:
    """Write every file of a generation into a temporary folder, then rename it: all or nothing."""
    from worldmodels.control.es_state import save_es_state  # cma imports matplotlib: only optimizer paths pay

    with atomic_folder(tree.generation(number)) as temp:
        for name, array in arrays.items():
            np.save(temp / f"{name}.npy", array)
        save_es_state(es, temp)
        write_json_atomic(temp / "generation.json", summary)
    return tree.generation(number)


def load_state(tree: ArtifactTree, number: int) -> "cma.CMAEvolutionStrategy":
    from worldmodels.control.es_state import JSON_NAME, load_es_state

    folder = tree.generation(number)
    if not (folder / JSON_NAME).exists() and (folder / LEGACY_STATE_NAME).exists():
        return _restart_from_legacy(tree, number)
    return load_es_state(folder)


def _restart_from_legacy(tree: ArtifactTree, number: int) -> "cma.CMAEvolutionStrategy":
    """A pickle can run code when loaded, so an old-format state is left unread: a new optimizer starts from
    that generation's mean and step size, losing only the adapted covariance."""
    from worldmodels.control.es_state import new_optimizer

    folder = tree.generation(number)
    mean = load_params(folder / "mean-params.npy")
    sigma = _json_field(folder / "generation.json", "sigma")
    popsize = _json_field(tree.control / "config.json", "popsize")
    if type(mean) is not np.ndarray or mean.ndim != 1 or type(sigma) not in (int, float) or not sigma > 0:
        raise WorldModelsError(f"{folder}: cannot restart CMA-ES from mean-params.npy and the sigma in generation.json")
    if type(popsize) is not int or popsize < 2:
        raise WorldModelsError(f"{tree.control / 'config.json'}: popsize missing or invalid, got {popsize!r}")
    print(f"note: {folder / LEGACY_STATE_NAME} uses the old pickle format, which is not loaded for safety; "
          f"CMA-ES restarts from generation {number}'s mean and sigma {sigma:.4g} with a fresh covariance", flush=True)
    covariance = read_json(tree.control / "config.json").get("covariance", "full")
    return new_optimizer(mean.astype(np.float64), float(sigma), popsize, covariance)


def _json_field(path: Path, name: str):
    document = read_json(path)
    return document.get(name) if isinstance(document, dict) else None


def load_params(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise WorldModelsError(f"{path}: controller parameters not found") from None
    except (ValueError, OSError, EOFError) as error:
        raise WorldModelsError(f"{path}: corrupt controller parameters ({error})") from None


def resolve_generation(tree: ArtifactTree, generation: str) -> tuple[np.ndarray, str]:
    """Parameters named by `--generation`: a number, `max` (newest) or `best` (best held-out evaluation)."""
    if generation == "best":
        path = tree.best_controller / "best-params.npy"
        if not path.is_file():
            raise WorldModelsError(f"{path}: no evaluated controller yet; train_controller.py writes it "
                                   "at every --eval_every generations")
        return load_params(path), "best"
    available = finished_generations(tree)
    if generation == "max":
        if not available:
            raise WorldModelsError(f"{tree.generations}: no controller generations found; run train_controller.py "
                                   "or pretrained.sh first")
        number = available[-1]
    else:
        try:
            number = int(generation)
        except ValueError:
            raise WorldModelsError(f"--generation must be a number, 'max' or 'best', got {generation!r}") from None
        if number not in available:
            newest = f"; newest is {available[-1]}" if available else ""
            raise WorldModelsError(f"{tree.generation(number)}: generation {number} does not exist{newest}")
    return load_params(tree.generation(number) / "best-params.npy"), str(number)


def generation_summary(tree: ArtifactTree, number: int) -> dict:
    return read_json(tree.generation(number) / "generation.json")


def parse_generation_span(text: str) -> list[int]:
    """'12-15' -> [12, 13, 14, 15]; '9' -> [9]."""
    first, dash, last = text.partition("-")
    last = last if dash else first
    if not first.isdigit() or not last.isdigit() or int(last) < int(first):
        raise WorldModelsError(f"generations must be N or FIRST-LAST with FIRST <= LAST, got {text!r}")
    return list(range(int(first), int(last) + 1))


def average_means(tree: ArtifactTree, numbers: list[int]) -> np.ndarray:
    """The average of these generations' CMA-ES means: the mean drifts on noisy fitness each generation, and
    averaging a few keeps the direction they share while the noise cancels (docs/agent-recipe.md)."""
    available = set(finished_generations(tree))
    missing = [number for number in numbers if number not in available]
    if missing:
        raise WorldModelsError(f"{tree.generation(missing[0])}: generation {missing[0]} does not exist")
    means = [load_params(tree.generation(number) / "mean-params.npy") for number in numbers]
    if len({mean.shape for mean in means}) > 1:
        raise WorldModelsError(f"generations {numbers[0]}-{numbers[-1]} have means of different sizes "
                               f"({sorted({mean.size for mean in means})}): not one CMA-ES run")
    return np.mean(np.stack(means), axis=0)  # in the means' own float32, as the shipped average was made
