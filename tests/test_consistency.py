"""The AnimateLCM-style baseline's maths against diffusers' LCMScheduler: the same timesteps, the same
boundary scalings, and the same multi-step consistency samples from the same noise."""

from __future__ import annotations

import pytest
import torch
from diffusers import LCMScheduler

from lightning_distill.diffusion.consistency import (
    boundary_scalings,
    consistency_output,
    consistency_sample,
    pseudo_huber,
    sampling_timesteps,
    solver_timesteps,
)
from lightning_distill.diffusion.schedule import NoiseSchedule


def _lcm_scheduler() -> LCMScheduler:
    return LCMScheduler(**NoiseSchedule().diffusers_config())


def test_solver_grid_and_sampling_timesteps_match_lcm_scheduler():
    schedule = NoiseSchedule()
    grid = solver_timesteps(schedule)
    assert grid[0] == 19 and grid[-1] == 999 and len(grid) == 50
    scheduler = _lcm_scheduler()
    for steps in (1, 2, 3, 4, 8):
        scheduler.set_timesteps(steps)
        assert sampling_timesteps(schedule, steps).tolist() == scheduler.timesteps.tolist()


def test_boundary_condition_and_scalings():
    scheduler = _lcm_scheduler()
    like = torch.zeros(3, 2)
    t = torch.tensor([0, 19, 259])
    c_skip, c_out = boundary_scalings(t, like)
    for i, step in enumerate(t.tolist()):
        expected_skip, expected_out = scheduler.get_scalings_for_boundary_condition_discrete(step)
        assert c_skip[i].item() == pytest.approx(float(expected_skip), rel=1e-6)
        assert c_out[i].item() == pytest.approx(float(expected_out), rel=1e-6, abs=1e-9)
    x = torch.randn(1, 4, 2, 3, 3)
    assert torch.equal(consistency_output(NoiseSchedule(), x, torch.randn_like(x), torch.tensor([0])), x)
    assert pseudo_huber(x, x).item() == 0.0


def _denoiser(x, t, states):
    return 0.3 * x + torch.sin(t.float() / 100).reshape(-1, 1, 1, 1, 1) + states.mean() * 0.1


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_consistency_sampler_matches_lcm_scheduler(steps):
    schedule = NoiseSchedule(pure_noise_at_terminal=False)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(2, 4, 3, 4, 4, generator=generator)
    states = torch.randn(2, 5, 8, generator=generator)
    seed = 7
    draws = torch.Generator().manual_seed(seed)
    renoise = torch.stack([torch.randn(noise.shape, generator=draws) for _ in range(max(steps - 1, 1))])
    ours = consistency_sample(_denoiser, noise, states, num_steps=steps, schedule=schedule, renoise=renoise)
    scheduler = _lcm_scheduler()
    scheduler.set_timesteps(steps)
    x = noise.clone()
    draws = torch.Generator().manual_seed(seed)
    per_frame = states.repeat_interleave(3, dim=0)
    for t in scheduler.timesteps:
        eps = _denoiser(x, t.expand(2), per_frame)
        x, denoised = scheduler.step(eps, t, x, generator=draws, return_dict=False)
    torch.testing.assert_close(ours, denoised, rtol=1e-5, atol=1e-5)
