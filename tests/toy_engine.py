"""A toy engine: everything a new engine is, in one module (tests/test_engines.py registers it
with one row). It is a thin wrapper of the torch engine that counts its steps and asks for two
threads per job; its numbers are the torch engine's."""

import functools

from adamgen.engines.base import Engine
from adamgen.engines.dense import TorchEngine


class ToyEngine(Engine):
    name = "toy"
    doc = "the torch engine, eager, counting its steps (a test's engine)"

    def supports(self, run) -> str | None:
        if run.train.device != "cpu":
            return "it runs on the CPU"
        return TorchEngine().supports(run)

    def threads(self, runs: int) -> int:
        return 2

    @functools.cache  # noqa: B019 (one class per process, as an imported module's)
    def program(self) -> type:
        torch_program = TorchEngine().program()

        class Counting(torch_program):
            name = "toy"
            steps = 0

            def advance(self, epoch0, perms, epochs):
                batches = 1 if perms is None else perms.shape[-1] // self.B
                Counting.steps += epochs * batches
                super().advance(epoch0, perms, epochs)

        return Counting
