"""Episode seeds: a pure function of (purpose, run seed, index), so runs repeat whatever the parallelism."""

from __future__ import annotations

import numpy as np

# Purposes keep the track sets apart: CMA-ES never trains on the held-out or test tracks.
SAMPLING = 0
CMA_TRAINING = 1
CMA_HELD_OUT = 2
FINAL_TEST = 3
VAE_BATCHES = 4


def derive_seed(purpose: int, *keys: int) -> int:
    """A 32-bit seed derived from the purpose and integer keys only."""
    return int(np.random.SeedSequence([purpose, *keys]).generate_state(1)[0])
