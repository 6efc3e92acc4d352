"""The non-saturating GAN loss of SDXL-Lightning / ADL, on raw discriminator logits (sigmoid inside,
through softplus, which stays finite where log(sigmoid) would underflow):

    L_D = -log D(real) - log(1 - D(fake)) = softplus(-real) + softplus(fake)
    L_G = -log D(fake)                    = softplus(-fake)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-logits_fake).mean()


@torch.no_grad()
def accuracy(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Share of real judged real (logit > 0) and fake judged fake, over both sets: 0.5 is a coin."""
    return torch.cat([(logits_real > 0).float(), (logits_fake < 0).float()]).mean()


def draw_renoise_timesteps(
    batch: int, timesteps: Sequence[int], weights: Sequence[float] | None, generator: torch.Generator
) -> torch.Tensor:
    """(B,) re-noising timesteps t* for the discriminator's inputs (SDXL-Lightning §3.7: {10, 250, 500,
    750}, weights 1:1:1:1, later 5:1:1:1), drawn by weight."""
    probabilities = torch.tensor(list(weights) if weights else [1.0] * len(timesteps), dtype=torch.float64)
    index = torch.multinomial(probabilities, batch, replacement=True, generator=generator)
    return torch.tensor(list(timesteps), dtype=torch.long)[index]
