"""The denoising loss every diffusion stage of the toy teacher trains with: epsilon prediction at a
uniformly drawn timestep, under the project's one schedule (linear betas, AnimateDiff's), with caption
dropout so that classifier-free guidance has an unconditional model to subtract."""

from __future__ import annotations

import math

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


LR_DECAYS = ("constant", "cosine")


def warmup_schedule(
    optimizer: torch.optim.Optimizer, steps: int, decay: str = "constant", warmup: int = 100
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup` steps, then the rate held ("constant") or annealed to zero by `steps`
    ("cosine"). Annealing is what turns a still-improving run into its best weights: on the toy UNet,
    1500 more steps annealed from 5e-4 raised shape accuracy of its samples from 0.33 to 0.48 and colour
    from 0.82 to 0.99 (README, "Results")."""
    if decay not in LR_DECAYS:
        raise ValueError(f"lr_decay {decay!r} is not one of {', '.join(LR_DECAYS)}")

    def factor(step: int) -> float:
        ramp = min(1.0, (step + 1) / warmup)
        if decay == "constant":
            return ramp
        return ramp * 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / max(1, steps)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
