"""Motion LoRA files in the format diffusers' ``pipe.load_lora_weights`` reads on an AnimateDiff pipeline.

A motion LoRA (AnimateDiff's MotionLoRA: zoom, pan, roll, ...) is a low-rank update of the query, key, value
and output projections of both attention blocks of every temporal transformer. The diffusers files
(``guoyww/animatediff-motion-lora-*``, written by diffusers' ``convert_animatediff_motion_lora_to_diffusers``)
hold two tensors per projection, named in diffusers' pre-peft attention-processor style::

    unet.down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight   (r, in)
    unet.down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.processor.to_q_lora.up.weight     (out, r)

``to_out_lora`` adapts the ``to_out.0`` Linear. diffusers 0.42 strips ``unet.``, drops ``.processor`` and
renames ``to_q_lora.down`` -> ``to_q.lora_A`` (``convert_unet_state_dict_to_peft``). The files hold no alpha,
so the layer becomes ``W + weight * up @ down`` with ``weight`` from ``pipe.set_adapters``.

The original AnimateDiff files (``v2_lora_ZoomIn.ckpt``) use the same tensor names inside the original
motion-module layout (``...motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0
.processor.to_q_lora.down.weight``, no ``unet.``); they are renamed through ``motion_module_keys``, the
project's one key mapping, so ``read_motion_lora`` + ``write_motion_lora`` convert them.

In memory a motion LoRA is a ``MotionLoRA``: the diffusers module name of each adapted projection
(``down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q``) -> ``(down (r, in), up (out, r))``.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from lightning_distill.atomic import atomic_output
from lightning_distill.models.motion_module_keys import MOTION_MODULE_PREFIX, original_to_diffusers_key

MotionLoRA = dict[str, tuple[Tensor, Tensor]]

FILE_PREFIX = "unet."
PROJECTIONS = {"to_q": "to_q", "to_k": "to_k", "to_v": "to_v", "to_out": "to_out.0"}
"""File name of each adapted projection -> its module name inside a diffusers ``Attention``."""
_FILE_KEY = re.compile(
    r"^(?P<block>.+\.attn[12])\.processor\.(?P<proj>to_q|to_k|to_v|to_out)_lora\.(?P<part>down|up)\.weight$"
)
_TARGET = re.compile(r"\.attn[12]\.(to_q|to_k|to_v|to_out\.0)$")
EXAMPLE_FILE_KEY = (
    "unet.down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight"
)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


class MotionLoRAFormatError(ValueError):
    """A file that is not a motion LoRA; the message names the file, what was expected and what to do."""


def motion_lora_targets(model: torch.nn.Module) -> list[str]:
    """Module names of the Linear layers a motion LoRA adapts in ``model`` (a ``MotionAdapter`` or a
    ``UNetMotionModel``): q, k, v and out of both attention blocks of every temporal transformer."""
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and MOTION_MODULE_PREFIX.match(name) and _TARGET.search(name)
    ]


def file_key(target: str, part: str) -> str:
    """The file's name for the ``part`` ("down" or "up") of the LoRA on module ``target``."""
    block, _, projection = target.removesuffix(".0").rpartition(".")
    return f"{FILE_PREFIX}{block}.processor.{projection}_lora.{part}.weight"


def to_file_state_dict(lora: MotionLoRA) -> dict[str, Tensor]:
    """The tensors of a diffusers motion-LoRA file (contiguous, so safetensors can write them)."""
    tensors = {}
    for target, (down, up) in lora.items():
        if not _TARGET.search(target) or not MOTION_MODULE_PREFIX.match(target):
            raise MotionLoRAFormatError(
                f"{target!r} is not a motion-module attention projection; expected names like "
                "'down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q' (see motion_lora_targets)"
            )
        _check_pair(target, down, up, "motion LoRA")
        tensors[file_key(target, "down")] = down.contiguous()
        tensors[file_key(target, "up")] = up.contiguous()
    return tensors


def from_file_state_dict(tensors: dict[str, Tensor], source: str | os.PathLike = "state dict") -> MotionLoRA:
    """A ``MotionLoRA`` from the tensors of a diffusers-format or original-layout motion-LoRA file."""
    parts: dict[str, dict[str, Tensor]] = {}
    for key, tensor in tensors.items():
        renamed = original_to_diffusers_key(key.removeprefix(FILE_PREFIX))
        match = _FILE_KEY.match(renamed or "")
        if match is None or not MOTION_MODULE_PREFIX.match(renamed):
            raise MotionLoRAFormatError(
                f"{source}: {key!r} is not a motion-LoRA tensor; expected names like {EXAMPLE_FILE_KEY!r} "
                "(diffusers) or the original AnimateDiff layout (v2_lora_*.ckpt). An image LoRA (lora_unet_*) "
                "loads with pipe.load_lora_weights directly."
            )
        target = f"{match['block']}.{PROJECTIONS[match['proj']]}"
        parts.setdefault(target, {})[match["part"]] = tensor
    if not parts:
        raise MotionLoRAFormatError(f"{source} holds no tensors; expected a motion LoRA")
    lora = {}
    for target, pair in parts.items():
        if set(pair) != {"down", "up"}:
            missing = ({"down", "up"} - set(pair)).pop()
            raise MotionLoRAFormatError(
                f"{source}: {file_key(target, missing)!r} is missing; every projection needs a down and an up "
                "matrix. The file is truncated or damaged: download or convert it again"
            )
        _check_pair(target, pair["down"], pair["up"], source)
        lora[target] = (pair["down"], pair["up"])
    return lora


def _check_pair(target: str, down: Tensor, up: Tensor, source) -> None:
    if down.ndim != 2 or up.ndim != 2 or down.shape[0] != up.shape[1]:
        raise MotionLoRAFormatError(
            f"{source}: the LoRA on {target} has down {tuple(down.shape)} and up {tuple(up.shape)}; expected "
            "down (rank, in_features) and up (out_features, rank) with the same rank"
        )


def write_motion_lora(lora: MotionLoRA, path: str | os.PathLike) -> Path:
    """Write ``lora`` as one diffusers-format ``.safetensors`` file (atomically); returns the path. Load it
    with ``pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=...)``."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise MotionLoRAFormatError(f"{path}: a motion LoRA is written as .safetensors; give such a path")
    tensors = to_file_state_dict(lora)
    with atomic_output(path) as temporary:
        save_file(tensors, str(temporary), metadata={"format": "pt"})
    return path


def read_motion_lora(path: str | os.PathLike) -> MotionLoRA:
    """Read a motion LoRA: a diffusers ``.safetensors`` file, or an original-layout AnimateDiff file
    (``.safetensors``, or ``.ckpt`` read only through ``torch.load(weights_only=True)``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"motion LoRA not found: {path}. AnimateDiff's motion LoRAs are published at "
            "huggingface.co/guoyww (animatediff-motion-lora-* in diffusers format, v2_lora_*.ckpt originals)"
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            tensors = load_file(str(path))
        elif suffix in PICKLE_SUFFIXES:
            tensors = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise MotionLoRAFormatError(
                f"{path}: unknown file type {suffix!r}; a motion LoRA is a .safetensors or "
                f"{'/'.join(PICKLE_SUFFIXES)} file"
            )
    except (SafetensorError, pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        raise MotionLoRAFormatError(
            f"cannot read {path} ({str(err).splitlines()[0] if str(err) else type(err).__name__}): truncated, "
            "not a tensor file, or a pickle holding more than tensors; download it again or convert it to "
            ".safetensors where you trust it"
        ) from err
    if isinstance(tensors, dict) and isinstance(tensors.get("state_dict"), dict):
        tensors = tensors["state_dict"]
    if not isinstance(tensors, dict) or not all(isinstance(v, Tensor) for v in tensors.values()):
        raise MotionLoRAFormatError(f"{path} is not a state dict of tensors; expected a motion LoRA")
    return from_file_state_dict(tensors, source=path)


def convert_motion_lora(source: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Rewrite a motion LoRA of either layout as a diffusers-format ``.safetensors`` file (tensors unchanged)."""
    return write_motion_lora(read_motion_lora(source), destination)
