"""Synthetic videos for the data pipeline's tests and benchmark: moving colour gradients, no assets.

Each clip is three sinusoidal gradients (one per channel) travelling in a seeded direction, so every
frame differs from the last (a codec cannot cheat with static frames) and clips differ from each other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .format import make_meta
from .video import encode_mp4
from .writer import ShardWriter


def moving_gradient(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A uint8 clip (F, H, W, 3): per-channel gradients drifting by a few pixels per frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames, dtype=np.float32)[:, None, None]
    y = np.arange(height, dtype=np.float32)[None, :, None]
    x = np.arange(width, dtype=np.float32)[None, None, :]
    clip = np.empty((frames, height, width, 3), np.uint8)
    for channel in range(3):
        angle = rng.uniform(0, 2 * np.pi)
        frequency = np.float32(2 * np.pi / (rng.uniform(0.5, 1.5) * max(height, width)))
        speed = np.float32(rng.uniform(1.0, 4.0))  # pixels per frame
        offset = np.float32(rng.uniform(0, 2 * np.pi))
        # One still image of the gradient, travelling by `speed` pixels along its direction per frame.
        still = (x * np.float32(np.cos(angle)) + y * np.float32(np.sin(angle))) * frequency + offset
        phase = still - t * (speed * frequency)
        clip[..., channel] = (np.float32(127.5) + np.float32(127.5) * np.sin(phase)).round()
    return clip


def write_synthetic_shards(
    out_dir: str | Path,
    clips: int,
    frames: int,
    height: int,
    width: int,
    fps: float = 24.0,
    shard_size: int = 16,
    prefix: str = "clips",
    seed: int = 0,
    keyframe_every: int | None = None,
) -> dict:
    """Write ``clips`` moving-gradient clips as shards; returns the writer's manifest.

    Keys are ``clip000000``, ...; captions ``"synthetic clip N"``; every clip carries style "synthetic"
    and labels {"index": N}.
    """
    with ShardWriter(out_dir, prefix=prefix, shard_size=shard_size) as writer:
        for index in range(clips):
            video = moving_gradient(frames, height, width, seed=seed + index)
            meta = make_meta(
                caption=f"synthetic clip {index}",
                source="synthetic",
                fps=fps,
                frames=frames,
                width=width,
                height=height,
                style="synthetic",
                labels={"index": index},
            )
            writer.write(f"clip{index:06d}", meta, encode_mp4(video, fps, keyframe_every=keyframe_every))
        return writer.close()
