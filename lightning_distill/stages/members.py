"""The pool members a stage trains across: each one's motion UNet (its own frozen image layers, the
installed motion module) and its base model (text encoder for the captions, VAE for samples)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Member:
    """One base model of the pool, ready for a stage.

    index: the base-model index the discriminator's flow embedding reads (ADL §3.3), stable over the run.
    unet: a UNetMotionModel; see `stages.motion_modules` for how motion modules are put on it.
    base: anything with `encode_prompts(list[str]) -> (B, L, D)` and `decode_latents` (models.loading).
    """

    name: str
    index: int
    unet: torch.nn.Module
    base: object

    @torch.no_grad()
    def text_states(self, captions: list[str]) -> torch.Tensor:
        return self.base.encode_prompts(list(captions))
