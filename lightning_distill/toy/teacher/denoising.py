"""The denoising loss every diffusion stage of the toy teacher trains with: epsilon prediction at a
uniformly drawn timestep, under the project's one schedule (linear betas, AnimateDiff's), with caption
dropout so that classifier-free guidance has an unconditional model to subtract."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lightning_distill.diffusion.schedule import NoiseSchedule


def caption_embeddings(
    captions: list[str], table: dict[str, torch.Tensor], dropout: float, generator: torch.Generator
) -> torch.Tensor:
    """(B, L, D) text states for `captions` from a precomputed table; each caption is replaced by the
    empty prompt "" with probability `dropout` (SD and AnimateDiff train with 10%)."""
    dropped = torch.rand(len(captions), generator=generator) < dropout
    return torch.stack([table["" if drop else caption] for caption, drop in zip(captions, dropped.tolist())])


def denoising_loss(
    denoise,
    latents: torch.Tensor,
    states: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator,
    high_noise_fraction: float = 0.0,
) -> torch.Tensor:
    """MSE between the true noise and `denoise(x_t, t, states)` for latents (B, C, ...) at t ~ U[0, T-1];
    a `high_noise_fraction` of the samples draws t from the noisier half instead, where a video model
    must decide where things go and how they move (the image model already knows what they look like)."""
    batch = latents.shape[0]
    total = schedule.num_train_timesteps
    t = torch.randint(total, (batch,), generator=generator)
    high = torch.randint(total // 2, total, (batch,), generator=generator)
    t = torch.where(torch.rand(batch, generator=generator) < high_noise_fraction, high, t)
    noise = torch.randn(latents.shape, generator=generator)
    x_t = schedule.add_noise(latents, noise, t)
    return F.mse_loss(denoise(x_t, t, states), noise)
