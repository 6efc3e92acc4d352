"""What a run leaves behind once its last stage is done: the distilled motion module in the layouts the
community loads, sample videos for every pool member and every held-out base model, and (in the toy
world) the toy metrics of the student next to the teacher's, as JSON and a markdown table.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from diffusers import UNetMotionModel
from omegaconf import DictConfig

from lightning_distill.atomic import save_pretrained_atomic, write_bytes_atomic
from lightning_distill.media import save_clip
from lightning_distill.models.motion_module_io import from_motion_adapter, write_motion_module
from lightning_distill.stages.chain import StagePlan

log = logging.getLogger("lightning_distill")

SAMPLE_PROMPTS = 4


def export_student(adapter: torch.nn.Module, export_dir: Path, name: str) -> dict[str, str]:
    """The student in three forms: a diffusers folder (`MotionAdapter.from_pretrained(folder)`), the single
    diffusers-layout file the model card loads (`MotionAdapter().load_state_dict(load_file(path))`), and
    the original AnimateDiff layout ComfyUI-AnimateDiff-Evolved reads."""
    checkpoint = from_motion_adapter(adapter)
    folder = export_dir / "motion_adapter"
    save_pretrained_atomic(adapter, folder)
    single = write_motion_module(checkpoint, export_dir / f"{name}_diffusers.safetensors", "diffusers")
    comfy = write_motion_module(checkpoint, export_dir / f"{name}_comfyui.safetensors", "original")
    return {"diffusers_folder": str(folder), "diffusers_file": str(single), "original_file": str(comfy)}


def evaluation_members(setup, adapter, image_lora: Path | None = None) -> dict:
    """name -> (motion UNet with `adapter`, base model, style, seen?) for every pool member this process
    hosts and, on rank 0, every held-out base model. `image_lora`: a consistency run's image LoRA, which
    the members carry from training and the held-out models get merged in."""
    from lightning_distill.models import consistency_lora
    from lightning_distill.models.loading import load_base_model
    from lightning_distill.stages.motion_modules import install

    members = {}
    for name, member in setup.members.items():
        install(member.unet, adapter)
        consistency_lora.set_enabled(member.unet, image_lora is not None)
        members[name] = (member.unet.eval(), member.base, setup.pool.pool.members[name].style, True)
    if setup.rank == 0:
        for name, spec in setup.pool.pool.held_out.items():
            base = load_base_model(spec)
            if image_lora is not None:
                consistency_lora.merge_file(base.unet, image_lora)
            unet = UNetMotionModel.from_unet2d(base.unet, adapter).eval()
            base.unet = None
            members[name] = (unet, base, spec.style, False)
    return members


def write_samples(
    cfg: DictConfig, members: dict, steps: int, sample_dir: Path, sampler: str = "euler"
) -> list[str]:
    from lightning_distill.diffusion.generate import generate

    prompts = list(cfg.samples.prompts)[:SAMPLE_PROMPTS] if cfg.get("samples") else []
    written = []
    for name, (unet, base, _, _) in members.items():
        videos = generate(
            unet, base, prompts, steps=steps, sampler=sampler, guidance_scale=1.0, seed=int(cfg.seed),
            frames=int(cfg.data.frames), latent_size=int(cfg.data.size) // base.vae_scale_factor,
            progress=False,
        )  # fmt: skip
        for index, (prompt, video) in enumerate(zip(prompts, videos, strict=True)):
            stem = sample_dir / name / f"{index:02d}_{prompt.replace(' ', '_')[:60]}"
            stem.parent.mkdir(parents=True, exist_ok=True)
            written += [
                str(p) for p in save_clip(video, stem, fps=float(cfg.data.get("target_fps") or 8), upscale=4)
            ]
    return written


def finish_run(cfg: DictConfig, plans: list[StagePlan], adapters: list, setup, run_dir: Path) -> dict:
    student, steps = adapters[-1], plans[-1].student_steps
    result = {"experiment": str(cfg.experiment), "student_steps": steps, "run_dir": str(run_dir)}
    if setup.rank == 0:
        result["exports"] = export_student(student, run_dir / "export", f"{cfg.experiment}")
    last = plans[-1]
    image_lora, sampler = None, "euler"
    if last.objective == "consistency":  # the AnimateLCM-style baseline: its LoRA and its own sampler
        from lightning_distill.stages.checkpoint import stage_dir
        from lightning_distill.stages.runner import CONSISTENCY_LORA

        image_lora = stage_dir(run_dir, last.index, last.name) / CONSISTENCY_LORA
        sampler = "consistency"
        if setup.rank == 0:
            result["exports"]["image_lora"] = str(
                write_bytes_atomic(run_dir / "export" / CONSISTENCY_LORA, image_lora.read_bytes())
            )
    members = evaluation_members(setup, student, image_lora)
    written = write_samples(cfg, members, steps, run_dir / "samples", sampler)
    result["samples"] = {"folder": str(run_dir / "samples"), "files": len(written)}
    if cfg.get("metrics") and cfg.metrics.get("enabled") and sampler == "euler":
        from lightning_distill.stages.run_metrics import measure_run

        result["metrics"] = measure_run(cfg, members, adapters[0], steps, run_dir)
    if setup.rank == 0:
        write_bytes_atomic(run_dir / "result.json", (json.dumps(result, indent=2) + "\n").encode())
        log.info("run finished: %s", run_dir / "result.json")
    return result
