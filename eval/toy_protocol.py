"""The toy protocol: every candidate on every toy base model (the pool's styles and the held-out one),
the same prompts and noise for all, scored by the judge (prompt accuracy, style fidelity, toy-FVD).

Generated clips are cached per (candidate, base model) as uint8 safetensors in `<out>/clips/`, written
atomically, so an interrupted evaluation resumes where it stopped and the report can show the clips.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from eval.candidates import Candidate
from lightning_distill.atomic import atomic_output

log = logging.getLogger("eval")


def _to_uint8(videos: torch.Tensor) -> torch.Tensor:
    return videos.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def _to_float(videos: torch.Tensor) -> torch.Tensor:
    return videos.float().div(127.5).sub(1)


def toy_base_models(teacher_dir: str) -> dict:
    from lightning_distill.models.base_model import BaseModelSpec
    from lightning_distill.toy.world import HELD_OUT_STYLE, STYLES, base_model_of

    return {
        base_model_of(style): (
            BaseModelSpec(base_model_of(style), "toy", teacher_dir, style),
            style != HELD_OUT_STYLE,
        )
        for style in STYLES
    }


def run_toy_protocol(candidates: list[Candidate], cfg, out: Path) -> dict:
    """{base model: {"seen": bool, "style": str, candidate key: metrics}} for every candidate."""
    from diffusers import UNetMotionModel

    from lightning_distill.diffusion.generate import generate
    from lightning_distill.models import consistency_lora
    from lightning_distill.models.loading import load_base_model
    from lightning_distill.models.motion_module_io import read_motion_module
    from lightning_distill.toy.metrics import toy_metrics, toy_prompts

    prompts = toy_prompts(int(cfg.clips_per_style), int(cfg.seed))
    adapters = {}
    results = {}
    cells = [
        (name, spec, seen, c)
        for name, (spec, seen) in toy_base_models(str(cfg.teacher)).items()
        for c in candidates
    ]
    base_cache = {}
    for name, spec, seen, candidate in tqdm(cells, desc="toy protocol", unit="cell"):
        row = results.setdefault(name, {"seen": seen, "style": spec.style})
        cache = out / "clips" / f"{candidate.key}__{name}.safetensors"
        if cache.exists():
            videos = _to_float(load_file(cache)["clips"])
        else:
            if name not in base_cache:
                base_cache.clear()  # one base model in memory at a time
                base_cache[name] = load_base_model(spec)
            base = base_cache[name]
            if candidate.motion_module not in adapters:
                adapters[candidate.motion_module] = (
                    read_motion_module(candidate.motion_module).to_motion_adapter().float()
                )
            image = base.unet
            if candidate.image_lora:  # merged into a copy: the cached base model stays LoRA-free
                image = consistency_lora.merge_file(copy.deepcopy(base.unet), candidate.image_lora)
            unet = UNetMotionModel.from_unet2d(image, adapters[candidate.motion_module]).eval()
            videos = generate(
                unet, base, prompts, steps=candidate.steps, sampler=candidate.sampler,
                guidance_scale=candidate.guidance_scale, seed=int(cfg.seed), frames=int(cfg.frames),
                latent_size=int(cfg.size) // base.vae_scale_factor, progress=False,
            )  # fmt: skip
            clips = _to_uint8(videos).contiguous()
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(cache) as temporary:
                save_file({"clips": clips}, str(temporary))
            # Scored as stored (8-bit, as any video file), so a resumed evaluation gives the same numbers.
            videos = _to_float(clips)
        row[candidate.key] = toy_metrics(videos, prompts, spec.style)
        log.info("%s on %s: prompt accuracy %.3f", candidate.key, name, row[candidate.key]["prompt_accuracy"])
    return results


def cached_clips(out: Path, key: str, base_model: str, count: int) -> torch.Tensor | None:
    path = out / "clips" / f"{key}__{base_model}.safetensors"
    return _to_float(load_file(path)["clips"][:count]) if path.exists() else None
