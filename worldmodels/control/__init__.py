"""Control (C): the linear controller, the batched rollout engine and CMA-ES training."""
