"""VideoDataModule for training; ``iterate_once`` (one deterministic pass, for stats and scoring).

Both stream WebDataset-style shards (``format.py``) through ``stream.ClipStream``. Batches are dicts:
"video" float32 (B, 3, F, S, S) in [-1, 1]; "caption", "base_model", "style" (str, "" when absent),
"labels" (dict), "key", "shard": lists of B; "skipped": {reason: count} since the same worker's previous
batch, so that summing it over batches gives the run's skip totals even with DataLoader workers.
"""

from __future__ import annotations

import lightning
import torch
from torch.utils.data import DataLoader

from .once import clip_stats, iterate_once
from .shards import expand_shards
from .stream import ClipStream
from .video import ClipSpec

# iterate_once and clip_stats live in once.py, which imports no lightning (so `data stats` starts in
# a few seconds); they are part of this module's interface.
__all__ = ["VideoDataModule", "clip_stats", "iterate_once"]


class VideoDataModule(lightning.LightningDataModule):
    """Streams video clips from shards for training.

    Args:
        train_shards: shard spec: a path, brace pattern ``{000000..000009}``, glob, ``pipe:CMD`` or any
            fsspec URL; several joined by ``::``.
        frames: frames per clip (F).
        size: side of the square clip in pixels (S): shorter side resized to S, then cropped.
        frame_stride: keep every n-th frame of the file.
        target_fps: if set, the stride is chosen per file as round(file fps / target_fps); leave
            frame_stride at 1 then (setting both is rejected as contradictory).
        random_start: start each clip at a uniformly drawn frame (else the first frame).
        crop: "center" or "random" square crop.
        hflip: flip half the clips horizontally (leave off when captions say "left"/"right").
        batch_size: clips per batch per rank.
        num_workers: DataLoader worker processes per rank.
        shuffle_buffer: raw samples held for shuffling (memory: this many mp4 files).
        resampled: draw shards with replacement, seeded by (seed, rank, worker, epoch), for exactly
            batches_per_epoch batches on every rank; False reads each shard once, split over ranks and
            workers (the last batch may be partial).
        batches_per_epoch: batches per rank per epoch in resampled mode.
        seed: base seed of every random choice in the data pipeline.
        interpolation: the decoder scaler's filter ("AREA", "BILINEAR", "BICUBIC", ...).
    """

    def __init__(
        self,
        train_shards: str,
        frames: int = 16,
        size: int = 256,
        frame_stride: int = 1,
        target_fps: float | None = None,
        random_start: bool = True,
        crop: str = "center",
        hflip: bool = False,
        batch_size: int = 4,
        num_workers: int = 2,
        shuffle_buffer: int = 256,
        resampled: bool = True,
        batches_per_epoch: int | None = 1000,
        seed: int = 0,
        interpolation: str = "AREA",
    ):
        super().__init__()
        if target_fps is not None and frame_stride != 1:
            raise ValueError(
                f"VideoDataModule: target_fps={target_fps} and frame_stride={frame_stride} contradict each "
                "other (target_fps picks the stride per file); set frame_stride to 1 or target_fps to null"
            )
        if resampled and not (batches_per_epoch and batches_per_epoch > 0):
            raise ValueError(
                f"VideoDataModule: resampled=True needs batches_per_epoch > 0 (got {batches_per_epoch}): "
                "resampled streams are endless, the epoch length must be given"
            )
        if batch_size < 1 or num_workers < 0:
            raise ValueError(
                f"VideoDataModule: batch_size >= 1 and num_workers >= 0 needed, got {batch_size}, {num_workers}"
            )
        self.save_hyperparameters()
        self.spec = ClipSpec(
            frames=frames,
            size=size,
            frame_stride=frame_stride,
            target_fps=target_fps,
            random_start=random_start,
            crop=crop,
            interpolation=interpolation,
        )
        self.train_urls: list[str] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_urls is None:
            self.train_urls = expand_shards(self.hparams.train_shards)

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        hp = self.hparams
        trainer = self.trainer
        rank, world_size, epoch = (None, None, 0)
        if trainer is not None:
            rank, world_size, epoch = trainer.global_rank, trainer.world_size, trainer.current_epoch
        dataset = ClipStream(
            self.train_urls,
            self.spec,
            hp.batch_size,
            resampled=hp.resampled,
            batches_per_epoch=hp.batches_per_epoch if hp.resampled else None,
            shuffle_buffer=hp.shuffle_buffer,
            hflip=hp.hflip,
            seed=hp.seed,
            rank=rank,
            world_size=world_size,
            epoch=epoch,
        )
        # Persistent workers keep each worker's ClipStream copy, so its epoch counter (and with it the
        # seed) advances from one epoch to the next instead of replaying epoch 0.
        return DataLoader(
            dataset,
            batch_size=None,
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )
