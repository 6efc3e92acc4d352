"""One deterministic pass over shards: ``iterate_once`` (stats, the toy world's scorer) and ``clip_stats``.

Kept apart from datamodule.py so that it needs torch but not lightning; datamodule.py re-exports both.
Batches are the ones ``stream.ClipStream`` documents.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DataLoader

from .shards import expand_shards
from .skips import add_counts
from .stream import ClipStream, collate
from .video import ClipSpec

_ONCE_OPTIONS = {"frame_stride", "target_fps", "interpolation", "rank", "world_size"}


def iterate_once(
    shards: str, frames: int, size: int, batch_size: int = 32, num_workers: int = 0, **decode_options
) -> Iterator[dict]:
    """One deterministic pass over every sample of every shard: first frames, centre crop, no flip.

    Args:
        shards: shard spec (as VideoDataModule.train_shards).
        frames, size: clip length F and side S.
        batch_size: clips per batch; the last batch may be smaller.
        num_workers: DataLoader workers (shards are split between them; the order stays deterministic).
        **decode_options: frame_stride, target_fps, interpolation, and rank/world_size to read only this
            rank's share of the shards.

    Yields:
        Batch dicts as the module docstring describes, each with B >= 1, except that when skips follow
        the last clip (or no clip decodes at all) they arrive in the last batch, or in a single B = 0
        batch when there is no clip at all. Nothing is yielded for shards without any sample.
    """
    unknown = set(decode_options) - _ONCE_OPTIONS
    if unknown:
        raise TypeError(f"iterate_once: unknown options {sorted(unknown)}; valid: {sorted(_ONCE_OPTIONS)}")
    rank, world_size = decode_options.pop("rank", None), decode_options.pop("world_size", None)
    spec = ClipSpec(frames=frames, size=size, **decode_options)
    urls = expand_shards(shards)
    dataset = ClipStream(urls, spec, batch_size, resampled=False, rank=rank, world_size=world_size)
    loader = DataLoader(dataset, batch_size=None, num_workers=min(num_workers, len(urls)))
    held: dict | None = None
    orphan: dict[str, int] = {}
    for batch in loader:
        if not batch["key"]:  # a worker's trailing skips: fold them into a batch with clips
            add_counts(held["skipped"] if held is not None else orphan, batch["skipped"])
            continue
        if held is not None:
            yield held
        held = batch
        add_counts(held["skipped"], orphan)
        orphan = {}
    if held is not None:
        yield held
    elif orphan:
        yield collate([], orphan, spec)


def clip_stats(shards: str, frames: int, size: int, **options) -> dict:
    """Stream the shards once through the real pipeline: {"clips": N, "skipped": {reason: count}}."""
    clips, skipped = 0, {}
    for batch in iterate_once(shards, frames, size, **options):
        clips += len(batch["key"])
        add_counts(skipped, batch["skipped"])
    return {"clips": clips, "skipped": dict(sorted(skipped.items()))}
