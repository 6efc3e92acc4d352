"""A motion module's ``MotionAdapter`` config: read off tensor shapes, checked against them, and its version.

Shapes fix the channels per block, the motion layers per block, the transformer layers per motion layer,
the mid block and (through the position tables) the frame length. Attention heads and GroupNorm groups
leave no trace in any shape, so without a written config they take AnimateDiff's values (8 heads, 32
groups) or, for channels those do not divide, the largest candidate that divides every block's channels.
Every config, inferred or given, is then checked by building the adapter on the meta device and comparing
its state dict's keys and shapes with the tensors.
"""

from __future__ import annotations

import inspect
import re

import torch
from torch import Tensor

from lightning_distill.models.motion_module_keys import MOTION_MODULE_PREFIX

_TRANSFORMER_BLOCK = re.compile(r"\.transformer_blocks\.(\d+)\.")


def infer_adapter_config(state_dict: dict[str, Tensor]) -> dict:
    """``MotionAdapter`` kwargs read off a diffusers-layout state dict's shapes (see the module docstring for
    what shapes cannot tell). Raises ValueError when there is no down block to read channels from."""
    # (block name, motion module index) -> its channels, transformer layers and position-table length
    modules: dict[tuple[str, int], dict[str, int]] = {}
    for key, tensor in state_dict.items():
        match = MOTION_MODULE_PREFIX.match(key)
        if not match:
            continue
        entry = modules.setdefault((match.group(1), int(match.group(3))), {"layers": 0})
        if key == f"{match.group(0)}norm.weight":
            entry["channels"] = tensor.shape[0]
        block = _TRANSFORMER_BLOCK.search(key)
        if block:
            entry["layers"] = max(entry["layers"], int(block.group(1)) + 1)
        if key.endswith("pos_embed.pe"):
            entry["max_len"] = tensor.shape[1]
    down = sorted({int(b.split(".")[1]) for b, _ in modules if b.startswith("down_blocks.")})
    if not down:
        raise ValueError("it has no down_blocks motion modules, which every AnimateDiff motion module has")
    per_block = [[modules[b] for b in sorted(modules) if b[0] == f"down_blocks.{i}"] for i in down]
    mid = [modules[b] for b in sorted(modules) if b[0] == "mid_block"]
    channels = tuple(m[0].get("channels", 0) for m in per_block)
    max_lens = {m["max_len"] for m in modules.values() if "max_len" in m}
    config = {
        "block_out_channels": channels,
        "motion_layers_per_block": _collapse([len(m) for m in per_block]),
        "motion_transformer_layers_per_block": _collapse([m[0]["layers"] for m in per_block]),
        "motion_mid_block_layers_per_block": max(len(mid), 1),
        "motion_transformer_layers_per_mid_block": _collapse([m["layers"] for m in mid]) if mid else 1,
        "motion_num_attention_heads": _largest_divisor((8, 4, 2, 1), channels),
        "motion_norm_num_groups": _largest_divisor((32, 16, 8, 4, 2, 1), channels),
        "motion_max_seq_length": max(max_lens) if max_lens else 32,
        "use_motion_mid_block": bool(mid),
    }
    if "conv_in.weight" in state_dict:
        config["conv_in_channels"] = state_dict["conv_in.weight"].shape[1]
    return config


def detect_version(config: dict) -> str:
    """AnimateDiff's version from the adapter's structure, by diffusers' own rule
    (``infer_diffusers_model_type``): a mid block is v2; without one, 24 frames is v1, else v3."""
    if config.get("use_motion_mid_block", True):
        return "v2"
    return "v1" if config.get("motion_max_seq_length") == 24 else "v3"


def _collapse(values: list[int]):
    return values[0] if len(set(values)) == 1 else tuple(values)


def _largest_divisor(candidates, channels) -> int:
    return next(c for c in candidates if all(ch % c == 0 for ch in channels))


def adapter_kwargs(config: dict) -> dict:
    """Only ``MotionAdapter.__init__`` arguments (drops ``_class_name`` and friends); lists become tuples."""
    from diffusers import MotionAdapter

    accepted = set(inspect.signature(MotionAdapter.__init__).parameters) - {"self"}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in accepted}


def fill_position_tables(state_dict: dict[str, Tensor], config: dict) -> None:
    """Add ``pos_embed.pe`` where a file left it out (diffusers' own converter drops it), computed by
    diffusers' sinusoidal embedding: the MotionAdapter state dict holds one per transformer block."""
    from diffusers.models.embeddings import SinusoidalPositionalEmbedding

    for key in [k for k in state_dict if k.endswith(".norm1.weight") and ".transformer_blocks." in k]:
        pe_key = key[: -len("norm1.weight")] + "pos_embed.pe"
        if pe_key not in state_dict:
            table = SinusoidalPositionalEmbedding(
                state_dict[key].shape[0], config["motion_max_seq_length"]
            ).pe
            state_dict[pe_key] = table.to(state_dict[key].dtype)


def adapter_mismatch(state_dict: dict[str, Tensor], config: dict) -> str | None:
    """None when ``MotionAdapter(**config)`` has exactly these keys and shapes; else what differs."""
    from diffusers import MotionAdapter

    try:
        with torch.device("meta"):
            expected = {k: v.shape for k, v in MotionAdapter(**config).state_dict().items()}
    except (ValueError, TypeError) as err:
        return f"the config builds no MotionAdapter ({err})"
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [k for k in expected if k in state_dict and state_dict[k].shape != expected[k]]
    if not (missing or unexpected or wrong):
        return None
    return (
        f"missing {missing[:3]} ({len(missing)}), unexpected {unexpected[:3]} ({len(unexpected)}), "
        f"wrong shape {wrong[:3]} ({len(wrong)})"
    )
