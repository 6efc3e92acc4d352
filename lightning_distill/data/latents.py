"""Clean latents for distillation, precomputed once per pool member (as FastVideo, t2v-turbo and DMD2
precompute theirs): stream the member's clips through the real data path, encode them with the member's
own VAE, keep them in memory and in a cache file in the run directory, so a resumed run does not decode
and encode again.

A member's clips come from the shards of its style (`style_shards` with "{style}" replaced): in the toy
world the renders of its style, in the paper world the real WebVid clips for SD1.5 and the generated
clips of its style for the others (ADL Table 1: generated data of one style is pooled across the base
models of that style).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lightning_distill.atomic import atomic_output
from lightning_distill.data.once import iterate_once

log = logging.getLogger("lightning_distill.data")


@dataclass
class LatentBank:
    """Scaled VAE latents (N, C, F, h, w) and their captions."""

    latents: torch.Tensor
    captions: list[str]

    def __len__(self) -> int:
        return self.latents.shape[0]

    def draw(self, generator: torch.Generator, count: int) -> tuple[torch.Tensor, list[str]]:
        index = torch.randint(len(self), (count,), generator=generator)
        return self.latents[index], [self.captions[i] for i in index.tolist()]


def member_shards(style_shards: str, style: str) -> str:
    return style_shards.replace("{style}", style)


@torch.no_grad()
def encode_clips(base, shards: str, frames: int, size: int, limit: int, batch_size: int = 64) -> LatentBank:
    """Decode up to `limit` clips from `shards` and encode them with `base.encode_video`."""
    latents, captions, skipped = [], [], {}
    # Every clip of the member's shards, whatever this process's rank: the rank split is by member.
    for batch in iterate_once(shards, frames, size, batch_size=batch_size, rank=0, world_size=1):
        if not batch["key"]:
            continue
        latents.append(base.encode_video(batch["video"]).float().cpu())
        captions.extend(batch["caption"])
        for reason, count in batch["skipped"].items():
            skipped[reason] = skipped.get(reason, 0) + count
        if len(captions) >= limit:
            break
    if skipped:
        log.warning("skipped while reading %s: %s", shards, skipped)
    if not captions:
        raise FileNotFoundError(
            f"no decodable clip in {shards}: render or write shards there (python -m lightning_distill.toy "
            "render ..., python -m lightning_distill.data write ...), or point data.style_shards elsewhere"
        )
    return LatentBank(torch.cat(latents)[:limit], captions[:limit])


def cached_bank(cache: Path, make) -> LatentBank:
    """Load the bank cached at `cache`, or make it and write the cache atomically."""
    cache = Path(cache)
    if cache.exists():
        tensors = load_file(cache)
        captions = json.loads(cache.with_suffix(".json").read_text())
        return LatentBank(tensors["latents"], captions)
    bank = make()
    with atomic_output(cache.with_suffix(".json")) as temporary:
        temporary.write_text(json.dumps(bank.captions))
    with atomic_output(cache) as temporary:
        save_file({"latents": bank.latents.contiguous()}, str(temporary))
    return bank
