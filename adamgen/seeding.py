"""Independent random streams derived from one seed.

A run's seed fixes its training set, test set, initial weights and batch order, each drawn from
its own stream, so that changing one (say, the batch size) leaves the others untouched. Every
optimizer with the same seed therefore starts from the same data and the same weights
[docs/science.md §4]. NumPy's PCG64 makes the streams identical on every platform and device.
"""

import numpy as np

STREAMS = {"train_data": 0, "test_data": 1, "init": 2, "batch_order": 3, "hessian": 4,
           "augment": 5}


def generator(seed: int, stream: str) -> np.random.Generator:
    sequence = np.random.SeedSequence(seed, spawn_key=(STREAMS[stream],))
    return np.random.Generator(np.random.PCG64(sequence))
