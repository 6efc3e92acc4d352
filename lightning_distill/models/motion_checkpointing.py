"""Gradient checkpointing of the motion modules, which diffusers does not do.

`UNetMotionModel.enable_gradient_checkpointing()` recomputes the image ResNets in the backward pass but
calls every motion module plainly, so each temporal transformer keeps its attention activations alive
until the backward pass; these grow with frames x resolution and dominate memory at 512x512x16. This
wraps each motion module's forward in `torch.utils.checkpoint` (non-reentrant: keyword arguments and
frozen inputs are fine), trading one extra forward of the motion module for its activations.

The wrapper is set on the module instance, so parameter names, state dicts and exported files are
unchanged; it is active only when autograd records (the frozen teacher's no-grad passes are untouched).
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def motion_modules_of(adapter: torch.nn.Module) -> list[torch.nn.Module]:
    """Every temporal transformer of a MotionAdapter (or of a UNetMotionModel)."""
    blocks = [*adapter.down_blocks, *adapter.up_blocks]
    if getattr(adapter, "mid_block", None) is not None:
        blocks.append(adapter.mid_block)
    return [m for block in blocks for m in getattr(block, "motion_modules", [])]


def enable_motion_checkpointing(adapter: torch.nn.Module) -> int:
    """Checkpoint every motion module of `adapter`; returns how many were wrapped."""
    modules = motion_modules_of(adapter)
    for module in modules:
        if getattr(module, "_ld_checkpointed", False):
            continue
        plain = module.forward

        def forward(*args, _plain=plain, **kwargs):
            if torch.is_grad_enabled():
                return checkpoint(_plain, *args, use_reentrant=False, **kwargs)
            return _plain(*args, **kwargs)

        module.forward = forward
        module._ld_checkpointed = True
    return len(modules)


def disable_motion_checkpointing(adapter: torch.nn.Module) -> None:
    for module in motion_modules_of(adapter):
        if getattr(module, "_ld_checkpointed", False):
            del module.forward  # back to the class's forward
            module._ld_checkpointed = False
