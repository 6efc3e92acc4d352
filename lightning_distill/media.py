"""Clips a person can look at: an mp4 and a gif per generated video, upscaled so a 32-pixel toy clip is
visible, and a contact-sheet image (frames left to right, one clip per row) for logs and reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lightning_distill.atomic import atomic_output
from lightning_distill.data.video import encode_mp4


def to_uint8_frames(video: torch.Tensor, upscale: int = 1) -> np.ndarray:
    """(3, F, H, W) in [-1, 1] -> uint8 (F, H*upscale, W*upscale, 3), nearest-neighbour upscaled so
    pixels stay crisp."""
    frames = video.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    frames = frames.permute(1, 2, 3, 0).numpy()
    if upscale > 1:
        frames = frames.repeat(upscale, axis=1).repeat(upscale, axis=2)
    return np.ascontiguousarray(frames)


def save_clip(video: torch.Tensor, stem: str | Path, fps: float = 8, upscale: int = 1) -> list[Path]:
    """Write `<stem>.mp4` and `<stem>.gif` (looping) for one video (3, F, H, W) in [-1, 1], atomically."""
    stem = Path(stem)
    frames = to_uint8_frames(video, upscale)
    if frames.shape[1] % 2 or frames.shape[2] % 2:  # yuv420p needs even sizes
        frames = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]
    mp4, gif = stem.with_suffix(".mp4"), stem.with_suffix(".gif")
    with atomic_output(mp4) as temporary:
        temporary.write_bytes(encode_mp4(frames, fps))
    images = [Image.fromarray(frame) for frame in frames]
    with atomic_output(gif) as temporary:
        images[0].save(
            temporary, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
        )
    return [mp4, gif]


def contact_sheet(videos: torch.Tensor, upscale: int = 1) -> np.ndarray:
    """(N, 3, F, H, W) in [-1, 1] -> uint8 (N*H, F*W, 3): one clip per row, frames left to right."""
    rows = [np.concatenate(list(to_uint8_frames(video, upscale)), axis=1) for video in videos]
    return np.concatenate(rows, axis=0)
