"""The GAN losses of the adversarial stages, on raw discriminator logits (sigmoid inside, through
softplus, which stays finite where log(sigmoid) would underflow).

Non-saturating (SDXL-Lightning / ADL; the default in both worlds), each destination judged on its own:

    L_D = -log D(real) - log(1 - D(fake)) = softplus(-real) + softplus(fake)
    L_G = -log D(fake)                    = softplus(-fake)

Relativistic pairing (RpGAN, Jolicoeur-Martineau 2018), each real judged against the fake that left the
same x_t:

    L_D = softplus(-(real - fake))
    L_G = softplus(-(fake - real))

Why the second exists: a distillation stage's real and fake leave one x_t and differ by a tenth of the
move, far less than destinations of different clips and timesteps differ from each other. Judged one at a
time, the discriminator needs an absolute threshold across all that variation, and on the toy world it
never found one (accuracy 0.50 throughout), so the student followed an uninformed discriminator; paired, it
only has to rank the two, and it does. The measurements, and what each loss gave the toy student, are in
README "What the adversarial stages add"; the papers' loss stays the default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


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


# The accuracy each loss trains the discriminator for (the progress bar shows it): per destination, or
# per pair.
TRAINED_ACCURACY = {"non_saturating": accuracy, "relativistic": pair_accuracy}
LOSSES = tuple(TRAINED_ACCURACY)


def draw_renoise_timesteps(
    batch: int, timesteps: Sequence[int], weights: Sequence[float] | None, generator: torch.Generator
) -> torch.Tensor:
    """(B,) re-noising timesteps t* for the discriminator's inputs (SDXL-Lightning §3.7: {10, 250, 500,
    750}, weights 1:1:1:1, later 5:1:1:1), drawn by weight."""
    probabilities = torch.tensor(list(weights) if weights else [1.0] * len(timesteps), dtype=torch.float64)
    index = torch.multinomial(probabilities, batch, replacement=True, generator=generator)
    return torch.tensor(list(timesteps), dtype=torch.long)[index]
