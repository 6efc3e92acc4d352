"""Generating a candidate's clips on a base model, cached: what every protocol shares.

Clips are stored per (candidate, base model) as uint8 safetensors in `<out>/clips/`, written atomically,
and scored as stored (8-bit, as any video file), so an interrupted evaluation resumes where it stopped,
gives the same numbers when it does, and the report can show the clips.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from eval.candidates import Candidate
from eval.videos import to_uint8
from lightning_distill.atomic import atomic_output


def to_float(videos: torch.Tensor) -> torch.Tensor:
    """uint8 pixels back to float [-1, 1] (the inverse of eval.videos.to_uint8)."""
    return videos.float().div(127.5).sub(1)


def cache_path(out: Path, key: str, base_model: str) -> Path:
    return Path(out) / "clips" / f"{key}__{base_model}.safetensors"


def cached_videos(out: Path, key: str, base_model: str, produce: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The clips of `key` on `base_model`: from the cache, or `produce()`d, stored, and read as stored."""
    path = cache_path(out, key, base_model)
    if path.exists():
        return to_float(load_file(path)["clips"])
    clips = to_uint8(produce()).contiguous()
    with atomic_output(path) as temporary:
        save_file({"clips": clips}, str(temporary))
    return to_float(clips)


def cached_clips(out: Path, key: str, base_model: str, count: int) -> torch.Tensor | None:
    path = cache_path(out, key, base_model)
    return to_float(load_file(path)["clips"][:count]) if path.exists() else None


class CandidateGenerator:
    """Generates any candidate's clips on a base model; motion modules are read once and kept."""

    def __init__(self, frames: int, size: int, seed: int, batch_size: int = 32, device: str = "cpu"):
        self.frames, self.size, self.seed = int(frames), int(size), int(seed)
        self.batch_size, self.device = int(batch_size), device
        self.adapters: dict[str, torch.nn.Module] = {}

    def _adapter(self, path: str) -> torch.nn.Module:
        from lightning_distill.models.motion_module_io import read_motion_module

        if path not in self.adapters:
            self.adapters[path] = read_motion_module(path).to_motion_adapter().float()
        return self.adapters[path]

    @torch.no_grad()
    def __call__(self, candidate: Candidate, base, prompts: list[str]) -> torch.Tensor:
        """Videos (N, 3, F, H, W) in [-1, 1] of `candidate` on `base` (a models.loading.BaseModel whose
        image UNet is still there); the base model is not modified."""
        if candidate.sampler == "animatelcm_release":
            return self._animatelcm_release(candidate, base, prompts)
        from diffusers import UNetMotionModel

        from lightning_distill.diffusion.generate import generate
        from lightning_distill.models import consistency_lora

        image = base.unet
        if candidate.image_lora:  # merged into a copy: the base model stays LoRA-free
            image = consistency_lora.merge_file(copy.deepcopy(base.unet), candidate.image_lora)
        unet = (
            UNetMotionModel.from_unet2d(image, self._adapter(candidate.motion_module)).eval().to(self.device)
        )
        return generate(
            unet, base, prompts, steps=candidate.steps, sampler=candidate.sampler,
            guidance_scale=candidate.guidance_scale, seed=self.seed, frames=self.frames,
            latent_size=self.size // base.vae_scale_factor, batch_size=self.batch_size, progress=False,
        )  # fmt: skip

    def _animatelcm_release(self, candidate: Candidate, base, prompts: list[str]) -> torch.Tensor:
        """The released AnimateLCM through diffusers, as its model card runs it (eval/baselines)."""
        from eval.baselines.animatelcm import generate_animatelcm, load_animatelcm

        components = {k: getattr(base, k) for k in ("vae", "text_encoder", "tokenizer", "unet")}
        pipe = load_animatelcm(components, candidate.motion_module, candidate.image_lora, device=self.device)
        return generate_animatelcm(
            pipe, prompts, candidate.steps, num_frames=self.frames, height=self.size, width=self.size,
            guidance_scale=candidate.guidance_scale, seed=self.seed, batch_size=self.batch_size,
            progress=False,
        )  # fmt: skip
