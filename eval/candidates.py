"""What an evaluation compares: the distilled students of a run (every stage's student at its step count,
so a 4-step run also yields its 32- and 8-step models; or, with `students_at`, every stage's student at
each of the given step counts, which shows what each stage of the chain adds at the target step count), a
single exported motion module, the teacher at its full sampler and run naively at few steps, and the
AnimateLCM-style baseline when one was trained.

A candidate is a motion module plus how to sample it; `key` names it in metrics, caches and reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Candidate:
    family: str  # "student", "teacher_full", "teacher_naive", "animatelcm"
    steps: int
    motion_module: str
    sampler: str = "euler"
    guidance_scale: float = 1.0
    image_lora: str | None = None  # the AnimateLCM-style baseline's image consistency LoRA
    stage: str | None = None  # set when several stages' students are sampled at the same step count

    @property
    def key(self) -> str:
        return f"{self.family}_{self.steps}" + (f"_{self.stage}" if self.stage else "")

    @property
    def label(self) -> str:
        names = {
            "student": "AnimateDiff-Lightning student",
            "teacher_full": "teacher, DPM-Solver++, CFG 7.5",
            "teacher_naive": "teacher, Euler, no CFG",
            "animatelcm": "AnimateLCM-style baseline",
        }
        stage = f" (stage {self.stage})" if self.stage else ""
        return f"{names[self.family]}, {self.steps} step{'' if self.steps == 1 else 's'}{stage}"


def step_counts(at) -> list[int] | None:
    """`students_at` as a list of distinct step counts in the order given (None: each student at its own).
    One number is a list of one; anything else that is not a whole number of at least 1 is an error."""
    if at is None:
        return None
    values = [at] if isinstance(at, int | str) else list(at)
    if not values or not all(str(v).isdigit() and int(v) >= 1 for v in values):
        raise ValueError(
            f"students_at={at}: give whole step counts of at least 1, e.g. students_at=[4] or [1,2,4,8], "
            "or null for each stage's student at its own step count"
        )
    return list(dict.fromkeys(int(v) for v in values))


def _is_motion_module(path: Path) -> bool:
    """A motion-module file, or a diffusers folder (its config beside its weights)."""
    from lightning_distill.models.motion_module_io import CONFIG_NAME

    return path.is_file() or (path / CONFIG_NAME).is_file()


def students_of(run: str | Path, at=None) -> list[Candidate]:
    """Every finished stage's student of a run directory, or the one motion module `run` points to (its
    step count from the file name `..._<n>step...` or the run's result.json).

    `at` (`students_at`, see `step_counts`): sample each student at these step counts instead of its own:
    Euler without CFG, a consistency stage's student with its own sampler and image LoRA. A run's students
    are then told apart by their stage: the MSE stage's student at 4 steps against the last stage's says
    what the adversarial stages added."""
    run = Path(run)
    if not run.exists():
        raise FileNotFoundError(f"run={run}: no such run directory or motion module")
    at = step_counts(at)
    found = []
    for summary_path in sorted(run.glob("stage_*/summary.json")):
        summary = json.loads(summary_path.read_text())
        student = summary_path.parent / "student"
        if not student.is_dir():
            continue
        sampling = {"stage": summary["stage"] if at else None}
        if summary.get("objective") == "consistency":  # one model, sampled at several step counts
            lora = str(summary_path.parent / summary["image_lora"])
            sampling |= {"sampler": "consistency", "image_lora": lora}
            own_steps = summary["sample_steps"]
        else:
            own_steps = [summary["student_steps"]]
        found += [Candidate("student", int(steps), str(student), **sampling) for steps in at or own_steps]
    if found:
        return found
    if at and _is_motion_module(run) and not any(run.glob("stage_*")):
        return [Candidate("student", s, str(run)) for s in at]  # one motion module, at the counts asked
    import re

    match = re.search(r"(\d+)step", run.name)
    if at or not match:
        raise ValueError(
            f"run={run}: not a run directory with a finished stage (stage_*/summary.json beside its "
            "student/) nor a motion module whose name says its step count (..._4step_...); pass a run "
            "directory, or a motion-module file or folder"
        )
    return [Candidate("student", int(match.group(1)), str(run))]


def baseline_of(run: str | Path | None, family: str = "animatelcm") -> list[Candidate]:
    """The AnimateLCM-style baseline's students (a run of `+experiment=animatelcm_*`), if given, each at
    its own step counts (`students_at` applies to the run under evaluation only)."""
    if not run:
        return []
    return [
        Candidate(family, c.steps, c.motion_module, c.sampler, c.guidance_scale, c.image_lora)
        for c in students_of(run)
    ]


def release_baseline(options) -> list[Candidate]:
    """The released AnimateLCM (paper world) at each of `options.steps`, run through diffusers as its model
    card does (LCMScheduler, its LoRA at `lora_scale`; eval/baselines/animatelcm.py)."""
    return [
        Candidate(
            "animatelcm", int(steps), str(options.adapter), "animatelcm_release", float(options.guidance_scale),
            image_lora=str(options.lora) if options.get("lora") else None,
        )
        for steps in options.steps
    ]  # fmt: skip
