"""Guards against V's training step turning pathologically slow again on some CPU.

Not a speed target (those live in benchmarks/): a ratio between two parts of the same model on the
same machine.  A full training step does about 3x the encoder's forward work per image for the
encoder, plus the decoder; the ratio is about 8 here.  TensorFlow's transposed-convolution kernel
on a 1x1 input made it over 40 on AVX2 machines.
"""

import time

import tensorflow as tf

from worldmodels.vision.training import VAETrainer, VAETrainingConfig

BATCH = 100
PATHOLOGICAL_RATIO = 20


def _best_time(function, images, repeats: int = 3) -> float:
    function(images)  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(images)
        tf.nest.map_structure(lambda tensor: tensor.numpy(), result)
        times.append(time.perf_counter() - start)
    return min(times)


def test_training_step_is_not_pathologically_slower_than_the_encoder(tree):
    trainer = VAETrainer(VAETrainingConfig(batch_size=BATCH), tree)
    images = tf.random.uniform((BATCH, 64, 64, 3), seed=0)
    encoder = tf.function(trainer.model.encode)
    ratio = _best_time(trainer.train_step, images) / _best_time(encoder, images)
    assert ratio < PATHOLOGICAL_RATIO, f"a V training step takes {ratio:.0f}x the encoder's forward pass"
