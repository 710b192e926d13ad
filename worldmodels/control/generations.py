"""CMA-ES generations on disk: one folder per finished generation, renamed into place when complete."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pickle
import re
from pathlib import Path

import numpy as np

from worldmodels.errors import WorldModelsError
from worldmodels.files import atomic_folder, read_json, write_json_atomic
from worldmodels.paths import ArtifactTree

if TYPE_CHECKING:
    import cma

GENERATION_PATTERN = re.compile(r"^generation_(\d+)$")
STATE_NAME = "es-state.pkl"


def finished_generations(tree: ArtifactTree) -> list[int]:
    if not tree.generations.is_dir():
        return []
    numbers = (GENERATION_PATTERN.match(path.name) for path in tree.generations.iterdir())
    return sorted(int(match.group(1)) for match in numbers if match)


def write_generation(tree: ArtifactTree, number: int, arrays: dict[str, np.ndarray], state: bytes, summary: dict) -> Path:
    """Write every file of a generation into a temporary folder, then rename it: all or nothing."""
    with atomic_folder(tree.generation(number)) as temp:
        for name, array in arrays.items():
            np.save(temp / f"{name}.npy", array)
        (temp / STATE_NAME).write_bytes(state)
        write_json_atomic(temp / "generation.json", summary)
    return tree.generation(number)


def load_state(tree: ArtifactTree, number: int) -> "cma.CMAEvolutionStrategy":
    path = tree.generation(number) / STATE_NAME
    try:
        return pickle.loads(path.read_bytes())
    except FileNotFoundError:
        raise WorldModelsError(f"{path}: optimizer state missing; delete {path.parent} to resume from the one before") from None
    except Exception as error:  # unpickling damaged bytes raises almost anything
        raise WorldModelsError(f"{path}: corrupt optimizer state ({type(error).__name__}); "
                               f"delete {path.parent} to resume from the generation before") from None


def load_params(path: Path) -> np.ndarray:
    try:
        return np.load(path)
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
