"""A toy teacher folder of the real toy architecture with random weights, for tests that run the
distillation pipeline without the shipped teacher (a randomly initialised model's numbers are never
reported as metrics: these tests check mechanics only)."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model

from lightning_distill.toy.models import (
    STYLE_LORA_CONFIG,
    build_motion_adapter,
    build_text_encoder,
    build_unet,
    build_vae,
)
from lightning_distill.toy.teacher.folder import save_component
from lightning_distill.toy.world import STYLES


def write_random_toy_teacher(folder: Path) -> Path:
    save_component(build_vae(0), folder, "vae")
    save_component(build_text_encoder(0), folder, "text_encoder")
    save_component(build_unet(0), folder, "unet")
    adapter = build_motion_adapter(0)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a trained motion module is not the identity
        for name, p in adapter.named_parameters():
            if name.endswith("proj_out.weight"):
                p.copy_(torch.randn(p.shape, generator=generator) * 0.05)
    save_component(adapter, folder, "motion_module")
    for index, style in enumerate(STYLES):
        lora = get_peft_model(build_unet(0), LoraConfig(**STYLE_LORA_CONFIG))
        generator = torch.Generator().manual_seed(index)
        with torch.no_grad():  # peft starts B at zero; each style's base model must differ
            for name, p in lora.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
        save_component(lora, folder / "unet_lora", style)
    return folder


def tiny_run_overrides(tmp: Path, teacher: Path) -> list[str]:
    """A 2-member toy pool, a handful of clips and iterations: the whole chain in well under a minute."""
    return [
        f"paths.output={tmp / 'runs'}",
        f"paths.data={tmp / 'data'}",
        f"paths.toy_teacher={teacher}",
        "~pool.members.toy_toon",
        "~pool.members.toy_photo",
        "~pool.members.toy_sketch",
        "latents.clips_per_member=8",
        "latents.render_clips=8",
        "recipe.batch_size=2",
        "recipe.mse.iterations=2",
        "recipe.adversarial.conditional_steps=2",
        "recipe.adversarial.unconditional_steps=1",
        "samples.prompts=[a red circle moving left]",
        "samples.every_n_iterations=2",
        "metrics.enabled=false",
        "trainer.enable_progress_bar=false",
    ]
