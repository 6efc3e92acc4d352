"""The image consistency LoRA of the AnimateLCM-style baseline (ALCM §3.3, "decoupled consistency
learning"): a peft LoRA on the image UNet's attention projections, trained first on frames with the
image model alone, then frozen and inserted into the online video model while the motion module learns.

One config and one target pattern serve both the image UNet (UNet2DConditionModel) and the video UNet
(UNetMotionModel): the pattern names the image transformer blocks' attention projections, and never the
motion modules' (their transformers live under `motion_modules`, not `attentions`), so the same LoRA
state dict loads into either.
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors.torch import load_file, save_file

from lightning_distill.atomic import atomic_output

ADAPTER = "consistency"
# Image attention projections only: `.attentions.` excludes `motion_modules.*` by construction.
TARGET = r".*attentions\.\d+\.transformer_blocks\.\d+\.attn[12]\.(to_q|to_k|to_v|to_out\.0)"


def lora_config(rank: int = 8, alpha: float | None = None) -> LoraConfig:
    return LoraConfig(r=rank, lora_alpha=alpha or rank, target_modules=TARGET, init_lora_weights=True)


def insert(unet: torch.nn.Module, config: LoraConfig) -> list[BaseTunerLayer]:
    """Add the (zero-initialised: B = 0) consistency LoRA to `unet` in place; returns its layers."""
    inject_adapter_in_model(config, unet, adapter_name=ADAPTER)
    return layers(unet)


def layers(unet: torch.nn.Module) -> list[BaseTunerLayer]:
    return [m for m in unet.modules() if isinstance(m, BaseTunerLayer)]


def parameters(unet: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for name, p in unet.named_parameters() if "lora_" in name]


def set_enabled(unet: torch.nn.Module, enabled: bool) -> None:
    """Switch the LoRA on (the online model) or off (the teacher and the EMA target, ALCM)."""
    for layer in layers(unet):
        layer.enable_adapters(enabled)


def state_dict(unet: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().cpu().contiguous()
        for k, v in get_peft_model_state_dict(unet, adapter_name=ADAPTER).items()
    }


def load_into(unet: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    result = set_peft_model_state_dict(unet, weights, adapter_name=ADAPTER)
    missing = [k for k in result.unexpected_keys if "lora_" in k]
    if missing:
        raise ValueError(f"consistency LoRA: {len(missing)} keys do not fit this UNet, e.g. {missing[0]}")


def save(unet: torch.nn.Module, path: Path, config: LoraConfig) -> Path:
    metadata = {"rank": str(config.r), "alpha": str(config.lora_alpha), "target": TARGET}
    with atomic_output(path) as temporary:
        save_file(state_dict(unet), str(temporary), metadata=metadata)
    return Path(path)


def merge_file(unet: torch.nn.Module, path: str | Path, scale: float = 1.0) -> torch.nn.Module:
    """Merge a saved consistency LoRA into an image UNet's weights at `scale` (AnimateLCM's release runs
    its LoRA at 0.8) and remove the LoRA layers: the result has the plain UNet's keys."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"consistency LoRA {path} not found: a consistency stage writes it next to its student"
        )
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata() or {}
    config = lora_config(int(meta.get("rank", 8)), float(meta.get("alpha", meta.get("rank", 8))))
    insert(unet, config)
    load_into(unet, load_file(str(path)))
    with torch.no_grad():
        for layer in layers(unet):
            layer.scaling[ADAPTER] = layer.scaling[ADAPTER] * float(scale)
            layer.merge(adapter_names=[ADAPTER])
    _unwrap(unet)
    return unet


def _unwrap(module: torch.nn.Module) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, BaseTunerLayer):
            setattr(module, name, child.get_base_layer())
        else:
            _unwrap(child)
