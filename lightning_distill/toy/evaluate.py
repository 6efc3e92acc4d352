"""One toy-world evaluation of a generator: sample the prompts with a motion UNet and its base model, then
score the clips with the judge (`metrics.toy_metrics`). The teacher's quality gate, a run's metrics and
the eval harness all measure through here, so their numbers are comparable."""

from __future__ import annotations

from lightning_distill.diffusion.generate import generate
from lightning_distill.toy.metrics import toy_metrics

# The teacher's full sampler (ADL: the AnimateDiff teacher at 32 steps with CFG 7.5; DPM-Solver++ is what
# AnimateDiff generated its data with).
TEACHER_FULL = {"sampler": "dpm", "steps": 32, "guidance_scale": 7.5}


def score_generator(
    unet, base, style: str, prompts: list[str], seed: int, frames: int, size: int, **sampler
) -> dict:
    """Toy metrics of `unet` (a UNetMotionModel) on `base` for `prompts` in `style`; `sampler`: sampler,
    steps, guidance_scale (as `diffusion.generate.generate` takes them)."""
    videos = generate(
        unet, base, prompts, seed=seed, frames=frames, latent_size=size // base.vae_scale_factor,
        progress=False, **sampler,
    )  # fmt: skip
    return toy_metrics(videos, prompts, style)
