"""Consistency-model maths for the AnimateLCM-style baseline (ALCM, arXiv 2402.00769; LCM, 2310.04378).

The one place that holds it: the skip timesteps of the 50-step DDIM solver, the boundary-condition
scalings c_skip / c_out, the consistency function built on the frozen epsilon-predicting UNet, the
multi-step consistency sampler, and the pseudo-Huber loss.

- Solver grid: LCM distils over 50 of the 1000 training timesteps, t_n = 20 n - 1 (19, 39, ..., 999),
  one DDIM step of the teacher from t_{n+1} to t_n per training example.
- Consistency function (x0 parameterisation): f(x, t) = c_skip(t) x + c_out(t) x0_hat(x, t), with
  x0_hat from the UNet's eps and LCM's scalings (sigma_data = 0.5, timestep scaling 10):
  c_skip = s^2 / ((10 t)^2 + s^2), c_out = 10 t / sqrt((10 t)^2 + s^2). At t = 0, f(x, 0) = x (the
  boundary condition), and from t ~ 10 on f is x0_hat.
- Sampling (diffusers' LCMScheduler): timesteps are taken from the solver grid, noisiest first, every
  50 / N-th; at each one the model's f(x, t) is the clean estimate, re-noised to the next timestep with
  fresh noise; the last estimate is the sample. It starts from the noise itself (init_noise_sigma = 1).
- Loss: pseudo-Huber sqrt((a - b)^2 + c^2) - c with c = 0.001 (LCM's default).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from lightning_distill.diffusion.samplers import Denoiser, guided_eps
from lightning_distill.diffusion.schedule import NoiseSchedule

SOLVER_STEPS = 50
SIGMA_DATA = 0.5
TIMESTEP_SCALING = 10.0
HUBER_C = 0.001


def solver_timesteps(schedule: NoiseSchedule, solver_steps: int = SOLVER_STEPS) -> Tensor:
    """The DDIM solver grid, ascending: (solver_steps,) int64, [19, 39, ..., 999] for 50 of 1000."""
    stride = schedule.num_train_timesteps // solver_steps
    return torch.arange(1, solver_steps + 1, dtype=torch.long) * stride - 1


def sampling_timesteps(schedule: NoiseSchedule, num_steps: int, solver_steps: int = SOLVER_STEPS) -> Tensor:
    """diffusers' LCMScheduler timesteps for `num_steps`: the solver grid, noisiest first, at the floored
    indices of `num_steps` evenly spaced points (4 steps: 999, 759, 499, 259)."""
    if not 1 <= num_steps <= solver_steps:
        raise ValueError(f"consistency sampling: num_steps must be in [1, {solver_steps}], got {num_steps}")
    grid = solver_timesteps(schedule, solver_steps).flip(0)
    indices = torch.from_numpy(
        np.floor(np.linspace(0, solver_steps, num_steps, endpoint=False)).astype(np.int64)
    )
    return grid[indices]


def boundary_scalings(t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    """(c_skip, c_out) for timesteps t (B,), shaped to broadcast against `like` (B, ...)."""
    scaled = t.to(device=like.device, dtype=torch.float32).clamp(min=0) * TIMESTEP_SCALING
    c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
    c_out = scaled / (scaled**2 + SIGMA_DATA**2).sqrt()
    shape = (-1,) + (1,) * (like.dim() - 1)
    return c_skip.reshape(shape), c_out.reshape(shape)


def consistency_output(schedule: NoiseSchedule, x_t: Tensor, eps: Tensor, t: Tensor) -> Tensor:
    """f(x_t, t) = c_skip x_t + c_out x0_hat, float32: the clean estimate a consistency model outputs."""
    c_skip, c_out = boundary_scalings(t, x_t)
    x0 = schedule.x0_from_eps(x_t.float(), eps.float(), t.clamp(min=0))
    return c_skip * x_t.float() + c_out * x0


def pseudo_huber(prediction: Tensor, target: Tensor, c: float = HUBER_C) -> Tensor:
    """LCM's loss: mean of sqrt((prediction - target)^2 + c^2) - c."""
    return (((prediction.float() - target.float()) ** 2 + c**2).sqrt() - c).mean()


@torch.no_grad()
def consistency_sample(
    denoiser: Denoiser,
    noise: Tensor,
    prompt_embeds: Tensor,
    *,
    num_steps: int,
    schedule: NoiseSchedule,
    renoise: Tensor,
    guidance_scale: float = 1.0,
    negative_prompt_embeds: Tensor | None = None,
    progress: bool = False,
) -> Tensor:
    """Multi-step consistency sampling. renoise: (num_steps - 1, B, C, F, H, W) unit Gaussian noise for
    the re-noising after each step but the last (drawn by the caller, so samples are reproducible).
    Returns x0 latents, float32."""
    if renoise.shape[0] < num_steps - 1:
        raise ValueError(f"consistency_sample: {num_steps} steps need {num_steps - 1} re-noise draws")
    timesteps = sampling_timesteps(schedule, num_steps).tolist()
    x = noise.float()
    batch = noise.shape[0]
    estimate = x
    for i, t_now in enumerate(tqdm(timesteps, disable=not progress, desc=f"consistency {num_steps} steps")):
        t = torch.full((batch,), t_now, dtype=torch.long, device=noise.device)
        eps = guided_eps(denoiser, x, t, prompt_embeds, negative_prompt_embeds, guidance_scale)
        estimate = consistency_output(schedule, x, eps, t)
        if i + 1 < len(timesteps):
            t_next = torch.full_like(t, timesteps[i + 1])
            x = schedule.add_noise(estimate, renoise[i].to(estimate), t_next)
    return estimate
