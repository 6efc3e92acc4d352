"""The GAN losses of the adversarial stages, on raw discriminator logits (sigmoid inside, through
softplus, which stays finite where log(sigmoid) would underflow).

Non-saturating (SDXL-Lightning / ADL; the default in both worlds), each destination judged on its own:

    L_D = -log D(real) - log(1 - D(fake)) = softplus(-real) + softplus(fake)
    L_G = -log D(fake)                    = softplus(-fake)

Relativistic pairing (RpGAN, Jolicoeur-Martineau 2018), each real judged against the fake that left the
same x_t:

    L_D = softplus(-(real - fake))
    L_G = softplus(-(fake - real))

Why the second exists: a distillation stage's real and fake start from one x_t and differ by ~10% of the
move (toy 32 -> 8: |real - fake| 0.90 against |real - x_t| 8.6), while destinations of different clips and
timesteps differ by far more. A discriminator that must call each destination real or fake on its own
needs an absolute threshold across all that variation; on the toy world it never found one (offline, the
student frozen, 60-100 updates at rates 5e-5 to 3e-3: accuracy 0.50, the logit gap between real and fake
0.000 to 0.002; in the 4-step runs d_real = d_fake to three decimals in both stages), so the student
followed an uninformed discriminator. Paired, it only has to rank the two: real above fake in 0.84-0.88 of
pairs after 40 updates offline, and inside a stage (the student at 1e-5, the discriminator at 1e-4) 0.7-0.9
of most logged batches. The toy 4-step student's numbers did not improve with it (README, "What the
adversarial stages add"): the option is there, the papers' loss stays the default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

LOSSES = ("non_saturating", "relativistic")


def check_loss(name: str) -> str:
    if name not in LOSSES:
        raise ValueError(f"adversarial loss {name!r}: use one of {', '.join(LOSSES)}")
    return name


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor, loss: str = "non_saturating"):
    if loss == "relativistic":
        return F.softplus(logits_fake - logits_real).mean()
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def generator_loss(
    logits_fake: torch.Tensor, logits_real: torch.Tensor | None = None, loss: str = "non_saturating"
):
    """`logits_real` (the real destinations of the same x_t, a constant for the student) only for the
    relativistic loss."""
    if loss == "relativistic":
        return F.softplus(logits_real - logits_fake).mean()
    return F.softplus(-logits_fake).mean()


@torch.no_grad()
def accuracy(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Share of real judged real (logit > 0) and fake judged fake, over both sets: 0.5 is a coin."""
    return torch.cat([(logits_real > 0).float(), (logits_fake < 0).float()]).mean()


@torch.no_grad()
def pair_accuracy(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Share of pairs (same x_t) where real scores above fake: what a relativistic discriminator learns,
    and whether any discriminator tells the two apart at all."""
    return (logits_real > logits_fake).float().mean()


def draw_renoise_timesteps(
    batch: int, timesteps: Sequence[int], weights: Sequence[float] | None, generator: torch.Generator
) -> torch.Tensor:
    """(B,) re-noising timesteps t* for the discriminator's inputs (SDXL-Lightning §3.7: {10, 250, 500,
    750}, weights 1:1:1:1, later 5:1:1:1), drawn by weight."""
    probabilities = torch.tensor(list(weights) if weights else [1.0] * len(timesteps), dtype=torch.float64)
    index = torch.multinomial(probabilities, batch, replacement=True, generator=generator)
    return torch.tensor(list(timesteps), dtype=torch.long)[index]
