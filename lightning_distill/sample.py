"""`python -m lightning_distill.sample`: text -> video, an mp4 and a gif per prompt (conf/sample.yaml).

Any base model the project can load (`base_model=` picks a conf/base_model/ file) with any motion module in
either layout, sampled with the project's one generation loop (`diffusion.generate`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from lightning_distill.config import CONF_DIR

log = logging.getLogger("lightning_distill")


def read_prompts(cfg: DictConfig) -> list[str]:
    if cfg.prompts_file:
        path = Path(cfg.prompts_file)
        if not path.is_file():
            raise FileNotFoundError(f"prompts_file={path}: no such file (one prompt per line)")
        prompts = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    else:
        prompts = [str(cfg.prompt)]
    if not prompts:
        raise ValueError("no prompt: set prompt=... or prompts_file=...")
    return prompts


def sample(cfg: DictConfig) -> list[str]:
    """Generate every prompt and write `<out>/<index>_<prompt>.{mp4,gif}`; return the written paths."""
    from diffusers import UNetMotionModel

    from lightning_distill.diffusion.generate import generate
    from lightning_distill.media import save_clip
    from lightning_distill.models.loading import load_base_model
    from lightning_distill.models.motion_module_io import read_motion_module

    prompts = read_prompts(cfg)
    base = load_base_model(instantiate(cfg.base_model))
    adapter = read_motion_module(cfg.motion_module).to_motion_adapter().float()
    unet = UNetMotionModel.from_unet2d(base.unet, adapter).eval()
    base.unet = None
    videos = generate(
        unet, base, prompts, steps=int(cfg.steps), sampler=str(cfg.sampler),
        guidance_scale=float(cfg.guidance_scale), seed=int(cfg.seed), frames=int(cfg.frames),
        latent_size=int(cfg.size) // base.vae_scale_factor, batch_size=int(cfg.batch_size),
        description=f"{cfg.sampler} {cfg.steps} steps",
    )  # fmt: skip
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (prompt, video) in enumerate(zip(prompts, videos, strict=True)):
        stem = out / f"{index:03d}_{prompt.replace(' ', '_')[:60]}"
        written += [str(p) for p in save_clip(video, stem, fps=float(cfg.fps), upscale=int(cfg.upscale))]
    return written


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="sample")
def main(cfg: DictConfig) -> None:
    written = sample(cfg)
    print(json.dumps({"written": written}, indent=2))


if __name__ == "__main__":
    main()
