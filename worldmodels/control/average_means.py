"""Entry script: average the CMA-ES means of consecutive generations into one controller.

The mean moves every generation on a noisy fitness (a few tracks per candidate); the average of the last
few keeps what they agree on. The shipped agent is one (docs/agent-recipe.md, "Averaged means"): score the
average with `scripts/diagnostics/held_out.py`, ship it with `pretrained export --best_params`.

    python -m worldmodels.control.average_means --generations 12-15 --output averaged-12-15-params.npy
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from worldmodels.errors import report_errors
from worldmodels.files import atomic_path
from worldmodels.paths import ArtifactTree


@report_errors
def main(argv: list[str] | None = None) -> None:
    from worldmodels.control.generations import average_means, parse_generation_span

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", required=True, help="FIRST-LAST, both included, e.g. 12-15")
    parser.add_argument("--output", type=Path, required=True, help="where the averaged parameters go (.npy)")
    args = parser.parse_args(argv)
    tree = ArtifactTree.from_env()
    numbers = parse_generation_span(args.generations)
    params = average_means(tree, numbers)
    with atomic_path(args.output) as temp:
        with temp.open("wb") as handle:
            np.save(handle, params)
    print(f"averaged the means of generations {numbers[0]}-{numbers[-1]} ({params.size} parameters) -> {args.output}")


if __name__ == "__main__":
    main()
