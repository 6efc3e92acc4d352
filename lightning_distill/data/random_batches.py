"""Random batches drawn from data held in memory, as a stream Lightning can fit on.

The toy world's training sets and the precomputed latents of distillation are small enough to hold in
memory, so their stages draw batches from memory: no decode per step, and every step of a 2-core budget
goes to the model. Batch i is a function of (seed, i) only, so a resumed run continues exactly where it
stopped without repeating or skipping a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import IterableDataset

Count = int | Callable[[], int]


def _value(count: Count | None) -> int | None:
    return count() if callable(count) else count


class RandomBatches(IterableDataset):
    """Batches `make_batch(generator)` for indices start, start + 1, ... (endless when `stop` is None).

    `start` and `stop` may be callables, read when iteration begins: a stage passes its restored
    iteration count, which Lightning loads from the checkpoint before it asks for the first batch.
    """

    def __init__(
        self,
        make_batch: Callable[[torch.Generator], dict],
        seed: int,
        start: Count = 0,
        stop: Count | None = None,
    ):
        self.make_batch = make_batch
        self.seed = seed
        self.start = start
        self.stop = stop

    def __iter__(self) -> Iterator[dict]:
        index, stop = _value(self.start), _value(self.stop)
        while stop is None or index < stop:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
            yield self.make_batch(generator)
            index += 1


def batches_loader(dataset: RandomBatches) -> torch.utils.data.DataLoader:
    """A DataLoader that hands the dataset's ready-made batches through (no collation, no workers:
    drawing from memory costs microseconds, a worker process would cost a core)."""
    return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=0)
