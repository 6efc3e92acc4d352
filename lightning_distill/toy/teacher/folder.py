"""The toy teacher's folder: where each trained part lives, written atomically, read back as diffusers
models.

    <folder>/teacher.json                      seeds, command, budgets, measured quality
    <folder>/vae/                              AutoencoderKL (diffusers folder)
    <folder>/text_encoder/                     CLIPTextModel (transformers folder)
    <folder>/unet/                             the toy "SD1.5" UNet2DConditionModel (annealed)
    <folder>/unet_pretrain/                    the same before annealing (training runs only)
    <folder>/unet_lora/<style>/                each style's LoRA (peft folder): unet + LoRA = that style's
                                               base model, merged when loaded
    <folder>/motion_module/                    the shared MotionAdapter (diffusers folder)
    <folder>/motion_module_pretrain/           the same before its held-still phase (training runs only)

Weights are stored in float16 to keep the repository small (the teacher *is* these rounded weights:
its quality is measured after reading them back) and loaded as float32. The tokenizer is the exact SD1.5
CLIP tokenizer, built offline (`models.tokenizer`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel
from transformers import CLIPTextModel

from lightning_distill.atomic import save_pretrained_atomic, write_bytes_atomic
from lightning_distill.config import asset_path

SHIPPED = Path(asset_path("toy/weights/teacher"))
INFO = "teacher.json"
MAKE_IT = "python -m lightning_distill +experiment=toy_teacher toy_teacher.install=true"


class ToyTeacherMissing(FileNotFoundError):
    pass


def _require(path: Path) -> Path:
    if not path.exists():
        raise ToyTeacherMissing(
            f"toy teacher part {path} is missing: the toy teacher ships in {SHIPPED}; a fresh clone has it. "
            f"To make it again: {MAKE_IT}"
        )
    return path


def save_component(module: torch.nn.Module, folder: Path, name: str) -> Path:
    """Save a diffusers/transformers/peft model under folder/name in float16, atomically."""
    half = copy.deepcopy(module).to(torch.float16)
    save_pretrained_atomic(half, Path(folder) / name)
    return Path(folder) / name


def has_component(folder: Path, name: str) -> bool:
    return (Path(folder) / name).is_dir()


def load_vae(folder: Path = SHIPPED) -> AutoencoderKL:
    return AutoencoderKL.from_pretrained(_require(Path(folder) / "vae"), torch_dtype=torch.float32)


def load_text_encoder(folder: Path = SHIPPED) -> CLIPTextModel:
    return CLIPTextModel.from_pretrained(_require(Path(folder) / "text_encoder"), torch_dtype=torch.float32)


def load_unet(folder: Path = SHIPPED, style: str | None = None, part: str = "unet") -> UNet2DConditionModel:
    """The toy "SD1.5" UNet, or with `style`, that style's base model (its LoRA merged in). `part`: the
    folder to read the UNet from (the training run's `unet_pretrain` before annealing)."""
    unet = UNet2DConditionModel.from_pretrained(_require(Path(folder) / part), torch_dtype=torch.float32)
    if style is None:
        return unet
    from peft import PeftModel

    lora = _require(Path(folder) / "unet_lora" / style)
    return PeftModel.from_pretrained(unet, str(lora), is_trainable=False).merge_and_unload()


def load_motion_adapter(folder: Path = SHIPPED, part: str = "motion_module") -> MotionAdapter:
    return MotionAdapter.from_pretrained(_require(Path(folder) / part), torch_dtype=torch.float32)


def styles_in(folder: Path = SHIPPED) -> list[str]:
    return sorted(p.name for p in (Path(folder) / "unet_lora").iterdir() if p.is_dir())


def read_info(folder: Path = SHIPPED) -> dict:
    path = Path(folder) / INFO
    return json.loads(path.read_text()) if path.exists() else {}


def write_info(folder: Path, info: dict) -> None:
    write_bytes_atomic(Path(folder) / INFO, (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
