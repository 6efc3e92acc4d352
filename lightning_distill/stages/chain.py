"""The progressive stage chain (ADL §3.4, SDXL-Lightning §3.6): 128 -> 32 with MSE, then adversarial
32 -> 8 -> 4 -> 2 -> 1 down to the target step count.

Each stage distils a teacher that samples in `teacher_steps` Euler steps into a student that samples in
`student_steps`: the student's one move spans n = teacher_steps / student_steps of the teacher's moves.
A stage's teacher is the previous stage's student, frozen; its student starts from that teacher.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lightning_distill.diffusion.schedule import MOVE_ERROR_SPACES

OBJECTIVES = ("mse", "adversarial", "consistency")
# A consistency stage (the AnimateLCM-style baseline) is not a link of the progressive chain: its
# teacher_steps is the size of its DDIM solver grid (50), and its student samples at any step count.
STANDALONE = ("consistency",)


class ChainError(ValueError):
    """A stage chain that cannot be run; the message names the stage and the rule it breaks."""


@dataclass(frozen=True)
class StagePlan:
    """One link of the chain. `moves_per_student_move` is the paper's n."""

    index: int
    name: str
    objective: str
    teacher_steps: int
    student_steps: int

    @property
    def moves_per_student_move(self) -> int:
        return self.teacher_steps // self.student_steps


def plan_chain(stages: Mapping[str, Mapping]) -> list[StagePlan]:
    """Validate the experiment's `stages` mapping (name -> {objective, teacher_steps, student_steps, ...})
    and return it as an ordered list of plans."""
    if not stages:
        raise ChainError(
            "The config declares no stages: choose an experiment, e.g. `+experiment=4step` "
            "(conf/experiment/ lists them)."
        )
    plans: list[StagePlan] = []
    for index, (name, stage) in enumerate(stages.items()):
        objective = stage.get("objective")
        if objective not in OBJECTIVES:
            raise ChainError(f"stages.{name}.objective is {objective!r}; valid: {', '.join(OBJECTIVES)}.")
        loss_space = (stage.get("module") or {}).get("loss_space")  # unset: the stage's own default
        if objective == "mse" and loss_space is not None and loss_space not in MOVE_ERROR_SPACES:
            raise ChainError(
                f"stages.{name}.module.loss_space is {loss_space!r}; valid: {', '.join(MOVE_ERROR_SPACES)} "
                "(conf/stage/mse.yaml says what each measures)."
            )
        teacher_steps, student_steps = stage.get("teacher_steps"), stage.get("student_steps")
        for key, value in (("teacher_steps", teacher_steps), ("student_steps", student_steps)):
            if not isinstance(value, int) or value < 1:
                raise ChainError(f"stages.{name}.{key} must be a positive integer, got {value!r}.")
        if objective in STANDALONE:
            if len(stages) != 1 or teacher_steps < student_steps:
                raise ChainError(
                    f"stages.{name}: a {objective} stage runs alone, from the original teacher, with "
                    f"student_steps ({student_steps}) at most its solver steps (teacher_steps {teacher_steps})."
                )
            plans.append(StagePlan(index, name, objective, teacher_steps, student_steps))
            continue
        if teacher_steps <= student_steps or teacher_steps % student_steps:
            raise ChainError(
                f"stages.{name}: teacher_steps ({teacher_steps}) must be a larger multiple of student_steps "
                f"({student_steps}), so one student move spans a whole number of teacher moves."
            )
        if plans and plans[-1].student_steps != teacher_steps:
            raise ChainError(
                f"stages.{name}.teacher_steps is {teacher_steps} but the previous stage "
                f"({plans[-1].name}) produces a {plans[-1].student_steps}-step student: each stage's teacher "
                "is the previous stage's student."
            )
        plans.append(StagePlan(index, name, objective, teacher_steps, student_steps))
    return plans


def describe_chain(plans: list[StagePlan]) -> str:
    """One line per stage, for logs and dry runs."""
    return "\n".join(
        f"  stage {p.index}: {p.name}: {p.objective}, {p.teacher_steps} -> {p.student_steps} steps "
        f"(one student move = {p.moves_per_student_move} teacher moves)"
        for p in plans
    )
