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
    guidance_scale: its base model's own CFG scale for the MSE stage's teacher, None for the recipe's
    (`BaseModelSpec.guidance_scale`).
    """

    name: str
    index: int
    unet: torch.nn.Module
    base: object
    guidance_scale: float | None = None

    def guidance(self, stage_scale: float) -> float:
        """The CFG scale this member's teacher is run at in a stage that guides at `stage_scale`: its own
        where its config sets one. A stage that does not guide (scale 1: its teacher already carries the
        guidance an earlier stage distilled) guides no member, or guidance would be distilled twice."""
        if stage_scale <= 1 or self.guidance_scale is None:
            return stage_scale
        return float(self.guidance_scale)

    @torch.no_grad()
    def text_states(self, captions: list[str]) -> torch.Tensor:
        return self.base.encode_prompts(list(captions))
