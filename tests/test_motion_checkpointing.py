"""Gradient checkpointing of the motion modules: the same gradients, fewer activations kept for the
backward pass (counted exactly with autograd's saved-tensor hooks), and unchanged state dicts."""

from __future__ import annotations

import torch
from tiny_models import tiny_motion_unet

from lightning_distill.models.motion_checkpointing import (
    disable_motion_checkpointing,
    enable_motion_checkpointing,
    motion_modules_of,
)


def _backward(unet) -> tuple[dict[str, torch.Tensor], int]:
    generator = torch.Generator().manual_seed(0)
    frames = 4
    sample = torch.randn(1, 4, frames, 16, 16, generator=generator)
    states = torch.randn(frames, 7, 32, generator=generator)
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    unet.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = unet(sample, torch.tensor([500]), encoder_hidden_states=states).sample
    out.square().mean().backward()
    grads = {n: p.grad.clone() for n, p in unet.named_parameters() if p.grad is not None}
    return grads, sum(saved)


def test_checkpointed_motion_modules_give_the_same_gradients_with_fewer_saved_activations():
    unet = tiny_motion_unet(seed=3)
    unet.requires_grad_(False)
    for module in motion_modules_of(unet):
        module.requires_grad_(True)  # as in a stage: only the motion module trains
    keys = list(unet.state_dict())
    plain_grads, plain_bytes = _backward(unet)
    assert enable_motion_checkpointing(unet) == len(motion_modules_of(unet)) > 0
    grads, saved_bytes = _backward(unet)
    assert set(grads) == set(plain_grads) and grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, plain_grads[name], rtol=1e-5, atol=1e-6)
    assert saved_bytes < 0.8 * plain_bytes
    assert list(unet.state_dict()) == keys
    disable_motion_checkpointing(unet)
    assert _backward(unet)[1] == plain_bytes
