"""The videos every metric takes: validation at the boundary, batching, and the two pixel conversions.

A video set is either one tensor (N, 3, F, H, W) or an iterable of such batches (so a large set never
has to sit in memory at once). Pixels are float in [-1, 1] (the project's convention, what the VAE
decodes to) or uint8 in [0, 255] (what a video file decodes to).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

Videos = torch.Tensor | Iterable[torch.Tensor]

# Decoders and resamplers overshoot by a hair; anything further out is a wrong convention ([0, 1] or 0..255
# floats), which would silently change every metric.
_RANGE_SLACK = 1e-3


def check_videos(batch: torch.Tensor, name: str = "videos") -> torch.Tensor:
    """Raise one clear error unless `batch` is (N, 3, F, H, W), uint8 or float in [-1, 1]."""
    if not isinstance(batch, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (N, 3, F, H, W), got {type(batch).__name__}")
    if batch.ndim != 5 or batch.shape[1] != 3:
        raise ValueError(
            f"{name} must be (N, 3, F, H, W) RGB videos, got shape {tuple(batch.shape)}; "
            "permute (N, F, C, H, W) clips with .permute(0, 2, 1, 3, 4)"
        )
    if batch.dtype == torch.uint8:
        return batch
    if not batch.is_floating_point():
        raise TypeError(f"{name} must be uint8 in [0, 255] or float in [-1, 1], got dtype {batch.dtype}")
    if batch.numel():
        low, high = batch.min().item(), batch.max().item()
        if low < -1 - _RANGE_SLACK or high > 1 + _RANGE_SLACK:
            raise ValueError(
                f"{name} are float in [{low:.3f}, {high:.3f}] but must be in [-1, 1] (the project's "
                "convention); map [0, 1] videos with 2 * x - 1, or pass uint8 0..255 videos as uint8"
            )
        if not torch.isfinite(batch).all():
            raise ValueError(f"{name} hold NaN or inf values")
    return batch


def iter_batches(videos: Videos, batch_size: int, name: str = "videos") -> Iterator[torch.Tensor]:
    """Checked batches of at most `batch_size` clips, from one tensor or an iterable of tensors."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    chunks = [videos] if isinstance(videos, torch.Tensor) else videos
    for chunk in chunks:
        check_videos(chunk, name)
        yield from torch.split(chunk, batch_size)


def to_unit_range(batch: torch.Tensor) -> torch.Tensor:
    """float32 in [0, 1] from uint8 0..255 or float [-1, 1] pixels."""
    if batch.dtype == torch.uint8:
        return batch.float() / 255.0
    return ((batch.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def to_uint8(batch: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 pixels, rounded to nearest (a float video is quantised as saving it to a file would)."""
    if batch.dtype == torch.uint8:
        return batch
    return (to_unit_range(batch) * 255.0).round().to(torch.uint8)
