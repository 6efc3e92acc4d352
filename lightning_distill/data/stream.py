"""ClipStream: the IterableDataset that turns shards into batches of clips, in each DataLoader worker.

Stages, each a small generator: shard URLs (resampled or split) -> raw samples (``shards.tar_samples``)
-> shuffle buffer (of raw bytes, which are far smaller than decoded clips) -> checked and decoded clips
-> batches. Every sample dropped on the way is counted in a ``SkipCounter`` whose counts ride along in
the next batch.

Two modes:
  resampled=True (training): each rank and worker draws shards with replacement from the whole list,
    with an rng seeded by (seed, rank, worker, epoch): ranks differ, runs reproduce. Each rank yields
    exactly ``batches_per_epoch`` full batches, spread over its workers, so DDP ranks never wait on one
    another at the end of an epoch.
  resampled=False (one pass, for stats and scoring): the shard list is split by rank, then by worker,
    with no shard read twice; the last batch may be partial.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset
from webdataset.utils import pytorch_worker_info

from .format import supported_format
from .shards import ShardError, open_shard, tar_samples
from .skips import SkipCounter
from .video import ClipError, ClipSpec, decode_clip


class ClipStream(IterableDataset):
    """Batches of clips from shards.

    Args:
        urls: shard URLs (``shards.expand_shards`` output).
        spec: how to cut each clip (frames, size, stride or target fps, start, crop).
        batch_size: clips per batch.
        resampled: training mode (see module docstring) or one pass.
        batches_per_epoch: batches per rank per epoch; required when resampled.
        shuffle_buffer: raw samples held for shuffling; 0 or 1 keeps shard order.
        hflip: flip each clip horizontally with probability 1/2.
        seed: base seed of every rng (shard draws, shuffle, start, crop, flip).
        rank, world_size: this process's place among the nodes; None reads them from the environment
            (RANK/WORLD_SIZE or torch.distributed), as WebDataset does.
        epoch: the epoch the first iteration belongs to; each later iteration adds one.

    Each item is a batch dict: "video" float32 (B, 3, F, S, S) in [-1, 1]; "caption", "base_model",
    "style" (str, "" when absent), "labels" (dict), "key", "shard": lists of B; "skipped": {reason: n}
    since this worker's previous batch. In one-pass mode a final batch with B = 0 carries skips that
    came after the last clip.
    """

    def __init__(
        self,
        urls: list[str],
        spec: ClipSpec,
        batch_size: int,
        *,
        resampled: bool,
        batches_per_epoch: int | None = None,
        shuffle_buffer: int = 0,
        hflip: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        epoch: int = 0,
    ):
        super().__init__()
        if not urls:
            raise ValueError("ClipStream needs at least one shard URL")
        if batch_size < 1:
            raise ValueError(f"ClipStream: batch_size must be >= 1, got {batch_size}")
        if resampled and (batches_per_epoch is None or batches_per_epoch < 1):
            raise ValueError(
                f"ClipStream: resampled mode needs batches_per_epoch >= 1 (the epoch length), got {batches_per_epoch}"
            )
        if (rank is None) != (world_size is None):
            raise ValueError("ClipStream: give both rank and world_size, or neither")
        self.urls, self.spec, self.batch_size = list(urls), spec, batch_size
        self.resampled, self.batches_per_epoch = resampled, batches_per_epoch
        self.shuffle_buffer, self.hflip, self.seed = shuffle_buffer, hflip, seed
        self.rank, self.world_size, self.epoch = rank, world_size, epoch

    def __len__(self) -> int:
        """Batches per epoch on this rank (resampled mode only: a single pass has no known length)."""
        if not self.resampled:
            raise TypeError("a one-pass ClipStream has no length: shards may hold any number of clips")
        return self.batches_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _place(self) -> tuple[int, int, int, int]:
        rank, world_size, worker, num_workers = pytorch_worker_info()
        if self.rank is not None:
            rank, world_size = self.rank, self.world_size
        return rank, world_size, worker, num_workers

    def __iter__(self) -> Iterator[dict]:
        rank, world_size, worker, num_workers = self._place()
        epoch = self.epoch
        self.epoch += 1  # per-instance: with persistent workers each worker's copy advances too
        rng = np.random.default_rng([self.seed, rank, worker, epoch])
        skips = SkipCounter()
        progress = _Progress()
        if self.resampled:
            # Enough draws that a dataset with any usable shard has yielded a clip (the shuffle buffer
            # holds back up to shuffle_buffer samples first); past it, the data is unusable, not unlucky.
            limit = 10 * len(self.urls) + self.shuffle_buffer
            urls = _resampled_urls(self.urls, rng, progress, limit, skips)
            share = self.batches_per_epoch // num_workers + (worker < self.batches_per_epoch % num_workers)
        else:
            urls = iter(self.urls[rank::world_size][worker::num_workers])
            share = None
        samples = _shuffled(_raw_samples(urls, skips), self.shuffle_buffer, rng)
        clips = _clips(samples, self.spec, self.hflip, rng, skips, progress)
        yield from _batches(clips, self.batch_size, self.spec, skips, share)


class _Progress:
    """Clips made so far in one iteration, shared by the stages that need to know."""

    def __init__(self) -> None:
        self.clips = 0


def _resampled_urls(
    urls: list[str], rng, progress: _Progress, limit: int, skips: SkipCounter
) -> Iterator[str]:
    draws = 0
    while True:
        if progress.clips == 0 and draws >= limit:
            raise RuntimeError(
                f"ClipStream: {draws} draws from {len(urls)} shard(s) (first: {urls[0]}) gave no usable clip; "
                f"skipped so far: {dict(skips.total)}. Check them with `python -m lightning_distill.data stats`"
            )
        draws += 1
        yield urls[int(rng.integers(len(urls)))]


def _raw_samples(urls: Iterator[str], skips: SkipCounter) -> Iterator[dict]:
    """Samples of each shard in turn; an unreadable or corrupt shard is counted and the next one read."""
    for url in urls:
        try:
            stream = open_shard(url)
        except (OSError, ValueError) as error:
            skips.skip("unreadable_shard", url, "", f"{type(error).__name__}: {error}")
            continue
        try:
            yield from tar_samples(url, stream)
        except ShardError as error:
            skips.skip(error.reason, url, error.key, error.detail)
        finally:
            stream.close()


def _shuffled(samples: Iterator[dict], size: int, rng: np.random.Generator) -> Iterator[dict]:
    """A buffered shuffle: hold up to ``size`` samples, emit a random one as each new one arrives."""
    if size <= 1:
        yield from samples
        return
    buffer: list[dict] = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        index = int(rng.integers(size))
        buffer[index], sample = sample, buffer[index]
        yield sample
    rng.shuffle(buffer)
    yield from buffer


def _clips(
    samples: Iterator[dict], spec: ClipSpec, hflip: bool, rng, skips: SkipCounter, progress: _Progress
) -> Iterator[dict]:
    """Check each raw sample's json and video, decode its clip; count and drop what fails."""
    for sample in samples:
        shard, key = sample["__url__"], sample["__key__"]
        meta, reason, detail = _read_meta(sample)
        if reason is None and "mp4" not in sample:
            reason, detail = (
                "missing_video",
                f"members: {sorted(k for k in sample if not k.startswith('__'))}",
            )
        if reason is not None:
            skips.skip(reason, shard, key, detail)
            continue
        try:
            frames = decode_clip(sample["mp4"], spec, rng)
        except ClipError as error:
            skips.skip(error.reason, shard, key, str(error))
            continue
        if hflip and rng.random() < 0.5:
            frames = frames[:, :, ::-1]
        progress.clips += 1
        yield {
            "frames": frames,
            "caption": meta["caption"].strip(),
            "base_model": _tag(meta.get("base_model")),
            "style": _tag(meta.get("style")),
            "labels": meta.get("labels") if isinstance(meta.get("labels"), dict) else {},
            "key": key,
            "shard": shard,
        }


def _tag(value) -> str:
    return value if isinstance(value, str) else ""


def _read_meta(sample: dict) -> tuple[dict, str | None, str]:
    """(meta, skip reason or None, detail). The caption comes from the json, else from KEY.txt."""
    meta: dict = {}
    if "json" in sample:
        try:
            meta = json.loads(sample["json"].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return {}, "malformed_json", str(error)
        if not isinstance(meta, dict):
            return {}, "malformed_json", f"top level is {type(meta).__name__}, not an object"
        if not supported_format(meta):
            return meta, "unsupported_format", f"format {meta.get('format')!r}"
        for field in ("caption", "base_model", "style"):
            if field in meta and meta[field] is not None and not isinstance(meta[field], str):
                return meta, "malformed_json", f"{field} is {type(meta[field]).__name__}, not a string"
        if "labels" in meta and meta["labels"] is not None and not isinstance(meta["labels"], dict):
            return meta, "malformed_json", f"labels is {type(meta['labels']).__name__}, not an object"
    caption = meta.get("caption")
    if not caption and "txt" in sample:
        caption = sample["txt"].decode("utf-8", errors="replace")
    if not caption or not caption.strip():
        return meta, "missing_caption", "no json" if "json" not in sample else "no caption in json"
    meta["caption"] = caption
    return meta, None, ""


def _batches(clips: Iterator[dict], batch_size: int, spec: ClipSpec, skips: SkipCounter, share: int | None):
    """Stack clips into batch dicts: ``share`` full batches when given, else all clips and a partial end."""
    if share == 0:
        return
    made, pending = 0, []
    for clip in clips:
        pending.append(clip)
        if len(pending) == batch_size:
            yield collate(pending, skips.take(), spec)
            pending, made = [], made + 1
            if made == share:
                return
    if pending or skips.pending:
        yield collate(pending, skips.take(), spec)


def collate(clips: list[dict], skipped: dict[str, int], spec: ClipSpec) -> dict:
    """One batch dict from decoded clips (see ClipStream for the layout); B may be 0."""
    if clips:
        frames = torch.from_numpy(np.stack([clip["frames"] for clip in clips]))  # (B, F, S, S, 3) uint8
        # Reorder the uint8 bytes first: a quarter of the memory traffic of reordering floats.
        video = frames.permute(0, 4, 1, 2, 3).contiguous().float().div_(127.5).sub_(1.0)
    else:
        video = torch.zeros((0, 3, spec.frames, spec.size, spec.size))
    batch = {"video": video}
    for field in ("caption", "base_model", "style", "labels", "key", "shard"):
        batch[field] = [clip[field] for clip in clips]
    batch["skipped"] = skipped
    return batch
