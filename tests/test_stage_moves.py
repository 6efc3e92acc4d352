"""The stage's grids, the teacher's path, the teacher's n moves against the student's one, and putting
motion modules on motion UNets."""

from __future__ import annotations

import copy

import pytest
import torch
from diffusers import UNetMotionModel

from lightning_distill.diffusion.schedule import CLEAN, NoiseSchedule
from lightning_distill.stages.motion_modules import install, using
from lightning_distill.stages.moves import student_move, teacher_moves
from lightning_distill.stages.timesteps import draw_intervals, grid, teacher_path
from lightning_distill.toy.models import build_motion_adapter, build_unet


@pytest.fixture
def schedule():
    return NoiseSchedule(pure_noise_at_terminal=False)


def test_grids_are_trailing_and_end_clean(schedule):
    assert grid(schedule, 4).tolist() == [999, 749, 499, 249, CLEAN]
    assert grid(schedule, 1).tolist() == [999, CLEAN]


@pytest.mark.parametrize(("teacher_steps", "student_steps"), [(128, 32), (32, 8), (8, 4), (4, 2), (2, 1)])
def test_student_grids_nest_in_teacher_grids(schedule, teacher_steps, student_steps):
    generator = torch.Generator().manual_seed(0)
    t, t_next = draw_intervals(schedule, student_steps, 64, generator)
    moves = teacher_steps // student_steps
    path = teacher_path(schedule, teacher_steps, t, t_next, moves)
    assert path.shape == (moves + 1, 64)
    assert torch.equal(path[0], t) and torch.equal(path[-1], t_next)
    teacher_grid = set(grid(schedule, teacher_steps).tolist())
    assert set(path.flatten().tolist()) <= teacher_grid
    assert (path[:-1] > path[1:]).all()


def test_extra_timesteps_start_off_grid_and_move_to_the_next_grid_point(schedule):
    generator = torch.Generator().manual_seed(1)
    t, t_next = draw_intervals(
        schedule, 1, 400, generator, extra_timesteps=[249, 499, 749], extra_probability=0.5
    )
    extra = t != 999
    assert 100 < int(extra.sum()) < 300
    assert set(t[extra].tolist()) <= {249, 499, 749}
    assert (t_next == CLEAN).all()


class OracleUNet(torch.nn.Module):
    """Predicts the true noise: every move then lands exactly on the forward process."""

    def __init__(self, noise):
        super().__init__()
        self.noise = noise
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.dtype = torch.float32

    def forward(self, x, t, encoder_hidden_states):
        return type("Out", (), {"sample": self.noise + 0 * self.weight})()


def test_teacher_moves_and_student_move_agree_under_exact_noise(schedule):
    generator = torch.Generator().manual_seed(2)
    x0 = torch.randn(3, 4, 8, 8, 8, generator=generator)
    noise = torch.randn(3, 4, 8, 8, 8, generator=generator)
    t, t_next = draw_intervals(schedule, 8, 3, generator)
    x_t = schedule.add_noise(x0, noise, t)
    states = torch.zeros(3, 77, 32)
    unet = OracleUNet(noise)
    path = teacher_path(schedule, 32, t, t_next, 4)
    by_teacher = teacher_moves(unet, schedule, x_t, path, states)
    by_student = student_move(unet, schedule, x_t, t, t_next, states)
    expected = torch.where(
        (t_next == CLEAN).reshape(-1, 1, 1, 1, 1), x0, schedule.add_noise(x0, noise, t_next.clamp(min=0))
    )
    torch.testing.assert_close(by_teacher, expected, atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(by_student, expected, atol=2e-4, rtol=1e-4)


def test_installed_motion_modules_are_shared_and_restored():
    adapter = build_motion_adapter(0)
    other = copy.deepcopy(adapter)
    unets = [UNetMotionModel.from_unet2d(build_unet(seed), adapter) for seed in (0, 1)]
    for unet in unets:
        install(unet, adapter)
    assert unets[0].down_blocks[0].motion_modules is adapter.down_blocks[0].motion_modules
    assert unets[1].mid_block.motion_modules is adapter.mid_block.motion_modules
    with using(unets, other):
        assert unets[0].up_blocks[1].motion_modules is other.up_blocks[1].motion_modules
    assert unets[0].up_blocks[1].motion_modules is adapter.up_blocks[1].motion_modules
    # One optimiser over the adapter trains the motion layers of every member, and nothing else.
    x = torch.randn(1, 4, 8, 8, 8)
    states = torch.randn(8, 77, 32)
    for unet in unets:
        unet.requires_grad_(False)
    adapter.requires_grad_(True)
    before = [p.clone() for p in unets[0].conv_in.parameters()]
    optimizer = torch.optim.SGD(adapter.parameters(), lr=0.1)
    loss = sum(
        unet(x, torch.tensor([500]), encoder_hidden_states=states).sample.square().mean() for unet in unets
    )
    loss.backward()
    optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, unets[0].conv_in.parameters(), strict=True))
    names = {n for n, p in unets[0].named_parameters() if p.grad is not None}
    assert names and all("motion_modules" in n for n in names)
