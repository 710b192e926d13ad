"""Where `train_controller.py --init_from` finds the parameters a new CMA-ES run starts from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from worldmodels.control.generations import finished_generations, load_params
from worldmodels.errors import WorldModelsError
from worldmodels.paths import ArtifactTree


def resolve_initial_params(tree: ArtifactTree, spec: str) -> tuple[np.ndarray, str]:
    """Parameters named by `--init_from`, and a description of where they came from.

    A generation contributes its CMA-ES mean (`mean-params.npy`), the point CMA-ES was converging on;
    `best` is the best held-out-evaluated mean.  A folder is a generation folder, `control/best/`, or an
    artifact tree (another run, or where `pretrained.sh` installed an archive).
    """
    if spec in ("best", "max") or spec.isdigit():
        return _from_tree(tree, spec)
    path = Path(spec).expanduser()
    if path.is_file():
        return load_params(path), str(path)
    if path.is_dir():
        for name in ("mean-params.npy", "best-params.npy"):
            if (path / name).is_file():
                return load_params(path / name), str(path / name)
        other = ArtifactTree(path)
        return _from_tree(other, "best" if (other.best_controller / "best-params.npy").is_file() else "max")
    raise WorldModelsError(f"--init_from {spec}: not a generation number, 'max', 'best', a params .npy file or a folder")


def _from_tree(tree: ArtifactTree, which: str) -> tuple[np.ndarray, str]:
    if which == "best":
        path = tree.best_controller / "best-params.npy"
        if not path.is_file():
            raise WorldModelsError(f"{path}: no evaluated controller to start from")
        return load_params(path), str(path)
    available = finished_generations(tree)
    number = available[-1] if which == "max" and available else int(which) if which.isdigit() else None
    if number is None or number not in available:
        raise WorldModelsError(f"{tree.generations}: generation {which} not found to start from")
    path = tree.generation(number) / "mean-params.npy"
    return load_params(path), str(path)
