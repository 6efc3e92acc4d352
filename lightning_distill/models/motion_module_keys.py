"""The one key mapping between the original AnimateDiff motion-module layout and diffusers' MotionAdapter.

Original (guoyww/AnimateDiff, and what ComfyUI-AnimateDiff-Evolved reads)::

    down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.to_q.weight
    down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.pos_encoder.pe

diffusers (``MotionAdapter.state_dict()``, what the AnimateDiff-Lightning ``*_diffusers.safetensors`` hold)::

    down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q.weight
    down_blocks.0.motion_modules.0.transformer_blocks.0.pos_embed.pe

The renames are diffusers' own (``convert_animatediff_checkpoint_to_diffusers``): ``norms.0 -> norm1``,
``norms.1 -> norm2``, ``ff_norm -> norm3``, ``attention_blocks.0 -> attn1``, ``attention_blocks.1 -> attn2``,
drop ``temporal_transformer``. The one structural difference: the original keeps a sinusoidal position
table ``pos_encoder.pe`` in each of a transformer block's two attention blocks, diffusers keeps one
``pos_embed.pe`` per transformer block. Both originals hold the same values (the same formula at the same
length), so diffusers -> original writes the table twice and original -> diffusers keeps one, after
checking the two agree (diffusers' converter drops both and lets the model recompute them; keeping the
table is what makes round trips exact). Keys outside ``motion_modules`` (``conv_in.*``) pass unchanged.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

EXAMPLE_ORIGINAL_KEY = "down_blocks.0.motion_modules.0.temporal_transformer.norm.weight"
EXAMPLE_DIFFUSERS_KEY = "down_blocks.0.motion_modules.0.norm.weight"

# (original, diffusers) names of one dotted path segment group inside a temporal transformer block.
_RENAMES = (
    ("norms.0", "norm1"),
    ("norms.1", "norm2"),
    ("ff_norm", "norm3"),
    ("attention_blocks.0", "attn1"),
    ("attention_blocks.1", "attn2"),
)
_TEMPORAL = "temporal_transformer"
_ORIGINAL_PE = ("attn1.pos_encoder.pe", "attn2.pos_encoder.pe")  # after the renames above
_DIFFUSERS_PE = "pos_embed.pe"
MOTION_MODULE_PREFIX = re.compile(r"^((?:down_blocks|up_blocks)\.(\d+)|mid_block)\.motion_modules\.(\d+)\.")
"""Matches the ``{block}.motion_modules.{j}.`` prefix both layouts share; groups: block name, block index
(None for mid_block), motion module index."""


def is_motion_module_key(key: str) -> bool:
    """True for keys of a motion module in either layout (``{down,up}_blocks.i`` / ``mid_block`` +
    ``.motion_modules.j.``) and for the optional ``conv_in`` input layer of a MotionAdapter."""
    return bool(MOTION_MODULE_PREFIX.match(key)) or key.startswith("conv_in.")


def is_original_key(key: str) -> bool:
    return f".{_TEMPORAL}." in key


def _replace_segments(key: str, pairs) -> str:
    # Padding with dots makes every rename match whole segments only (``norm1`` never hits ``norm10``).
    padded = f".{key}."
    for old, new in pairs:
        padded = padded.replace(f".{old}.", f".{new}.")
    return padded[1:-1]


def original_to_diffusers_key(key: str) -> str | None:
    """The diffusers name of an original-layout key; None for the second attention block's ``pe``, which
    duplicates the first's (``original_to_diffusers`` checks that it does)."""
    if not MOTION_MODULE_PREFIX.match(key):
        return key
    renamed = _replace_segments(key.replace(f".{_TEMPORAL}.", "."), _RENAMES)
    if renamed.endswith(_ORIGINAL_PE[1]):
        return None
    if renamed.endswith(_ORIGINAL_PE[0]):
        return renamed[: -len(_ORIGINAL_PE[0])] + _DIFFUSERS_PE
    return renamed


def diffusers_to_original_keys(key: str) -> tuple[str, ...]:
    """The original name(s) of a diffusers key: two for a ``pos_embed.pe`` table, one otherwise."""
    match = MOTION_MODULE_PREFIX.match(key)
    if not match:
        return (key,)
    prefix, rest = match.group(0), key[match.end() :]
    if rest.endswith(_DIFFUSERS_PE):
        stem = rest[: -len(_DIFFUSERS_PE)]
        rests = tuple(stem + pe for pe in _ORIGINAL_PE)
    else:
        rests = (rest,)
    inverse = [(new, old) for old, new in _RENAMES]
    return tuple(f"{prefix}{_TEMPORAL}.{_replace_segments(r, inverse)}" for r in rests)


def original_to_diffusers(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename an original-layout state dict to diffusers names; tensors are the same objects.

    Raises ValueError if a transformer block's two ``pos_encoder.pe`` tables differ (diffusers has room
    for one, so the conversion would lose one of them).
    """
    converted: dict[str, Tensor] = {}
    for key, tensor in state_dict.items():
        new_key = original_to_diffusers_key(key)
        if new_key is None:
            continue
        converted[new_key] = tensor
    for key, tensor in state_dict.items():
        if original_to_diffusers_key(key) is not None:
            continue
        first_key = key[: -len("attention_blocks.1.pos_encoder.pe")] + "attention_blocks.0.pos_encoder.pe"
        target = original_to_diffusers_key(first_key)
        if target not in converted:
            converted[target] = tensor
        elif not torch.equal(converted[target], tensor):
            raise ValueError(
                f"{key} differs from {first_key}: the two position tables of one transformer block must be "
                "equal to fit diffusers' single pos_embed.pe; this file cannot be converted without loss"
            )
    return converted


def diffusers_to_original(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a diffusers-layout state dict to original names. A ``pos_embed.pe`` table is written under
    both attention blocks; the second is a copy (safetensors refuses two names for one storage)."""
    converted: dict[str, Tensor] = {}
    for key, tensor in state_dict.items():
        for i, new_key in enumerate(diffusers_to_original_keys(key)):
            converted[new_key] = tensor if i == 0 else tensor.clone()
    return converted
