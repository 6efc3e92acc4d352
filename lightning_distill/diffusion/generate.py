"""Text -> video with a motion UNet and its base model: the one generation loop behind `sample`, the
teacher's quality gate, the distillation run's samples and metrics, and the eval harness.

Clip i's starting noise comes from its own generator, seeded by (seed, i), so a clip does not change with
the batch size or with which clips were generated before it (an interrupted eval resumes with the same
clips).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lightning_distill.diffusion.samplers import dpm_solver_sample, euler_sample, motion_unet_denoiser
from lightning_distill.diffusion.schedule import NoiseSchedule

# euler: the Lightning students; dpm: the teacher's full sampler; consistency: the AnimateLCM-style baseline.
SAMPLERS = ("euler", "dpm", "consistency")


class TextAndPixels(Protocol):
    """What generation needs of a base model besides its UNet (models.loading.BaseModel has both)."""

    def encode_prompts(self, prompts: list[str]) -> Tensor: ...  # (B, L, D)

    def decode_latents(self, latents: Tensor) -> Tensor: ...  # (B, 4, F, h, w) -> (B, 3, F, H, W) in [-1, 1]


def clip_noise(index: int, seed: int, shape: tuple[int, ...]) -> Tensor:
    """Unit Gaussian noise of one clip (C, F, h, w), a function of (seed, index) only."""
    generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(index))
    return torch.randn(shape, generator=generator)


@torch.no_grad()
def generate_latents(
    unet: torch.nn.Module,
    base: TextAndPixels,
    prompts: list[str],
    *,
    steps: int,
    sampler: str = "euler",
    guidance_scale: float = 1.0,
    seed: int = 0,
    frames: int,
    latent_size: int,
    latent_channels: int = 4,
    first_index: int = 0,
    schedule: NoiseSchedule | None = None,
) -> Tensor:
    """x0 latents (N, C, F, h, w) for `prompts`; clip k uses noise index first_index + k."""
    if sampler not in SAMPLERS:
        raise ValueError(f"generate: sampler {sampler!r} is not one of {', '.join(SAMPLERS)}")
    schedule = schedule or NoiseSchedule()
    device = next(unet.parameters()).device
    shape = (latent_channels, frames, latent_size, latent_size)
    noise = torch.stack([clip_noise(first_index + k, seed, shape) for k in range(len(prompts))]).to(device)
    states = base.encode_prompts(list(prompts)).to(device)
    negative = base.encode_prompts([""] * len(prompts)).to(device) if guidance_scale > 1 else None
    denoiser = motion_unet_denoiser(unet)
    if sampler == "consistency":
        from lightning_distill.diffusion.consistency import consistency_sample

        # Re-noise draws are per clip too (seed + 1 + step), so a clip does not depend on its batch.
        renoise = torch.stack(
            [
                torch.stack([clip_noise(first_index + k, seed + 1 + j, shape) for k in range(len(prompts))])
                for j in range(max(steps - 1, 1))
            ]
        ).to(device)
        return consistency_sample(
            denoiser, noise, states, num_steps=steps, schedule=schedule, renoise=renoise,
            guidance_scale=guidance_scale, negative_prompt_embeds=negative,
        )  # fmt: skip
    if sampler == "euler":
        return euler_sample(
            denoiser, noise, states, num_steps=steps, schedule=schedule,
            guidance_scale=guidance_scale, negative_prompt_embeds=negative,
        )  # fmt: skip
    return dpm_solver_sample(
        denoiser, noise, states, num_steps=steps, schedule=schedule,
        guidance_scale=guidance_scale, negative_prompt_embeds=negative,
    )  # fmt: skip


@torch.no_grad()
def generate(
    unet: torch.nn.Module,
    base: TextAndPixels,
    prompts: list[str],
    *,
    batch_size: int = 32,
    progress: bool = True,
    description: str = "generating",
    **options,
) -> Tensor:
    """Videos (N, 3, F, H, W) in [-1, 1] for `prompts`, in batches, with a progress bar. `options` are
    those of `generate_latents` (steps, sampler, guidance_scale, seed, frames, latent_size, ...)."""
    videos = []
    for start in tqdm(
        range(0, len(prompts), batch_size), disable=not progress, desc=description, unit="batch"
    ):
        chunk = prompts[start : start + batch_size]
        latents = generate_latents(unet, base, chunk, first_index=start, **options)
        videos.append(base.decode_latents(latents).float().cpu())
    return torch.cat(videos) if videos else torch.empty(0)
