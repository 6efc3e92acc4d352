"""Putting a motion module on the pool's motion UNets.

A stage holds two motion modules (diffusers `MotionAdapter`s): the student's, trained, and the
teacher's, a frozen copy of the previous stage's student. Every pool member's `UNetMotionModel` keeps
its own frozen image layers and borrows the motion layers of whichever adapter is installed: installing
assigns the adapter's module objects (no copy), so one set of parameters serves every member and the
teacher costs no second copy of any image UNet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def _blocks(unet: torch.nn.Module, adapter: torch.nn.Module):
    pairs = list(zip(unet.down_blocks, adapter.down_blocks, strict=True))
    pairs += list(zip(unet.up_blocks, adapter.up_blocks, strict=True))
    if getattr(adapter, "mid_block", None) is not None:
        pairs.append((unet.mid_block, adapter.mid_block))
    return pairs


def install(unet: torch.nn.Module, adapter: torch.nn.Module) -> None:
    """Make `unet` (a UNetMotionModel) run with `adapter`'s motion modules, sharing their parameters."""
    for unet_block, adapter_block in _blocks(unet, adapter):
        unet_block.motion_modules = adapter_block.motion_modules


def installed(unet: torch.nn.Module) -> list[torch.nn.Module]:
    """The motion-module lists `unet` runs with now (to restore them later)."""
    blocks = [*unet.down_blocks, *unet.up_blocks, unet.mid_block]
    return [getattr(block, "motion_modules", None) for block in blocks]


@contextlib.contextmanager
def using(unets: list[torch.nn.Module] | torch.nn.Module, adapter: torch.nn.Module) -> Iterator[None]:
    """Run the block with `adapter` installed on `unets`, then put back what was installed before."""
    unets = [unets] if isinstance(unets, torch.nn.Module) else list(unets)
    saved = [installed(unet) for unet in unets]
    try:
        for unet in unets:
            install(unet, adapter)
        yield
    finally:
        for unet, modules in zip(unets, saved, strict=True):
            for block, motion in zip(
                [*unet.down_blocks, *unet.up_blocks, unet.mid_block], modules, strict=True
            ):
                if motion is not None:
                    block.motion_modules = motion
