"""The toy teacher's training clips: rendered to shards once, read back through the real data path
(`data.iterate_once`: tar -> mp4 decode -> tensor), then held in memory per style.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from lightning_distill.data.datamodule import iterate_once
from lightning_distill.toy.shards import ensure_rendered, style_render_seed

log = logging.getLogger("lightning_distill.toy")


@dataclass
class ClipBank:
    """One style's clips: uint8 videos (N, 3, F, H, W) and their captions."""

    style: str
    videos: torch.Tensor
    captions: list[str]

    def __len__(self) -> int:
        return self.videos.shape[0]

    def draw_clips(self, generator: torch.Generator, count: int) -> tuple[torch.Tensor, list[str]]:
        """`count` random clips as float (count, 3, F, H, W) in [-1, 1], with their captions."""
        index = torch.randint(len(self), (count,), generator=generator)
        return to_float(self.videos[index]), [self.captions[i] for i in index.tolist()]

    def draw_frames(self, generator: torch.Generator, count: int) -> tuple[torch.Tensor, list[str]]:
        """`count` random single frames as float (count, 3, H, W) in [-1, 1], with their clips' captions."""
        index = torch.randint(len(self), (count,), generator=generator)
        frame = torch.randint(self.videos.shape[2], (count,), generator=generator)
        return to_float(self.videos[index, :, frame]), [self.captions[i] for i in index.tolist()]


def to_float(videos: torch.Tensor) -> torch.Tensor:
    return videos.float().div(127.5).sub(1.0)


def load_clip_banks(
    data_dir: str | Path, styles: list[str], clips_per_style: int, seed: int, frames: int, size: int
) -> dict[str, ClipBank]:
    """Render any missing style folder under `data_dir/<style>/`, then read each one once."""
    banks = {}
    for style in styles:
        folder = ensure_rendered(
            Path(data_dir) / style, style, clips_per_style, style_render_seed(seed, style), frames, size
        )
        videos, captions, skipped = [], [], {}
        for batch in iterate_once(f"{folder}/*.tar", frames, size, batch_size=256):
            videos.append(batch["video"].add(1.0).mul(127.5).round().to(torch.uint8))
            captions.extend(batch["caption"])
            for reason, count in batch["skipped"].items():
                skipped[reason] = skipped.get(reason, 0) + count
        if not captions:
            raise RuntimeError(f"no decodable clip in {folder}: delete the folder to render it again")
        if skipped:
            log.warning("style %s: skipped %s while reading %s", style, skipped, folder)
        banks[style] = ClipBank(style, torch.cat(videos)[:clips_per_style], captions[:clips_per_style])
        log.info("style %s: %d clips from %s", style, len(banks[style]), folder)
    return banks
