"""Where a stage trains: the student's timestep grid, the teacher's path through each of its moves, and
the 1- and 2-step stabiliser's extra timesteps (SDXL-Lightning §3.7).

Grids are trailing (the first move starts at t = T-1, zero terminal SNR) and end at CLEAN (-1). A student
of N steps moves between consecutive points of its grid; its teacher of n*N steps covers the same
interval in n moves along its own grid, which contains the student's (trailing grids nest when one step
count divides the other).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_distill.diffusion.schedule import CLEAN, NoiseSchedule


def grid(schedule: NoiseSchedule, steps: int) -> Tensor:
    """The N trailing timesteps followed by CLEAN: (N + 1,) int64, noisiest first."""
    return torch.cat([schedule.trailing_timesteps(steps), torch.tensor([CLEAN])])


def draw_intervals(
    schedule: NoiseSchedule,
    student_steps: int,
    batch: int,
    generator: torch.Generator,
    extra_timesteps: list[int] | None = None,
    extra_probability: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """(t, t_next), each (B,): a uniformly drawn move of the student's grid per sample.

    With `extra_timesteps`, a sample instead starts with probability `extra_probability` at one of them
    and moves to the first point of the student's grid below it: the 1- and 2-step students also learn
    to move from the 4-step grid's points, which SDXL-Lightning found to stabilise them.
    """
    points = grid(schedule, student_steps)
    index = torch.randint(student_steps, (batch,), generator=generator)
    t, t_next = points[index], points[index + 1]
    if extra_timesteps and extra_probability > 0:
        extra = torch.tensor(extra_timesteps, dtype=torch.long)
        chosen = extra[torch.randint(len(extra), (batch,), generator=generator)]
        use = torch.rand(batch, generator=generator) < extra_probability
        below = torch.stack([points[points < value][0] for value in chosen.tolist()])
        t, t_next = torch.where(use, chosen, t), torch.where(use, below, t_next)
    return t, t_next


def teacher_path(
    schedule: NoiseSchedule, teacher_steps: int, t: Tensor, t_next: Tensor, moves: int
) -> Tensor:
    """The teacher's (moves + 1, B) timesteps from t to t_next: its own grid where the interval is one of
    the student's grid (the usual case), evenly spaced and rounded otherwise (extra timesteps)."""
    teacher_grid = grid(schedule, teacher_steps)
    columns = []
    for start, end in zip(t.tolist(), t_next.tolist(), strict=True):
        inside = teacher_grid[(teacher_grid <= start) & (teacher_grid >= end)]
        if len(inside) == moves + 1 and inside[0] == start and inside[-1] == end:
            columns.append(inside)
        else:
            columns.append(torch.linspace(start, end, moves + 1).round().long())
    return torch.stack(columns, dim=1)
