"""The two moves every distillation stage compares: the teacher's n Euler moves and the student's one.

Both are the schedule's functional `move` (DDPM space, the space the UNet reads; x0 and eps conversions
inside), so teacher and student are measured on exactly the same footing (ADL §3.4: "moves go through
the x0 / eps conversions").
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from lightning_distill.diffusion.samplers import guided_eps, motion_unet_denoiser
from lightning_distill.diffusion.schedule import NoiseSchedule


def predict_eps(unet: torch.nn.Module, x_t: Tensor, t: Tensor, states: Tensor) -> Tensor:
    """eps of a motion UNet for x_t (B, C, F, H, W) at t (B,) with per-video text states (B, L, D)."""
    return guided_eps(motion_unet_denoiser(unet), x_t, t.clamp(min=0), states)


@torch.no_grad()
def teacher_moves(
    unet: torch.nn.Module,
    schedule: NoiseSchedule,
    x_t: Tensor,
    path: Tensor,
    states: Tensor,
    negative_states: Tensor | None = None,
    guidance_scale: float = 1.0,
) -> Tensor:
    """x at the end of `path` ((n + 1, B) timesteps, path[0] = t): n Euler moves of the (frozen) teacher,
    with classifier-free guidance when guidance_scale > 1 (the first, MSE stage: the recipe's scale)."""
    denoiser = motion_unet_denoiser(unet)
    x = x_t
    for now, nxt in itertools.pairwise(path):
        eps = guided_eps(denoiser, x, now.clamp(min=0), states, negative_states, guidance_scale)
        x = schedule.move(x, eps, now, nxt)
    return x


def student_move(
    unet: torch.nn.Module, schedule: NoiseSchedule, x_t: Tensor, t: Tensor, t_next: Tensor, states: Tensor
) -> Tensor:
    """The student's single move from t to t_next, differentiable through its eps."""
    return schedule.move(x_t, predict_eps(unet, x_t, t, states), t, t_next)
