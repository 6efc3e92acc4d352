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


def students_of(run: str | Path, at: list[int] | None = None) -> list[Candidate]:
    """Every finished stage's student of a run directory, or the one motion module `run` points to (its
    step count from the file name `..._<n>step...` or the run's result.json).

    `at`: sample each student at these step counts instead of its own (Euler, no CFG; the consistency
    stage's with its own sampler). A run's students are then told apart by their stage: the MSE stage's
    student at 4 steps against the last stage's says what the adversarial stages added."""
    run = Path(run)
    if not run.exists():
        raise FileNotFoundError(f"run={run}: no such run directory or motion module")
    at = [int(s) for s in at] if at else None
    if at is not None and any(s < 1 for s in at):
        raise ValueError(f"students_at={at}: step counts must be at least 1")
    found = []
    for summary_path in sorted(run.glob("stage_*/summary.json")):
        summary = json.loads(summary_path.read_text())
        student = summary_path.parent / "student"
        if not student.is_dir():
            continue
        stage = summary["stage"] if at else None
        if summary.get("objective") == "consistency":  # one model, sampled at several step counts
            lora = str(summary_path.parent / summary["image_lora"])
            for steps in at or summary["sample_steps"]:
                found.append(
                    Candidate(
                        "student", int(steps), str(student), "consistency", image_lora=lora, stage=stage
                    )
                )
        else:
            for steps in at or [summary["student_steps"]]:
                found.append(Candidate("student", int(steps), str(student), stage=stage))
    if found:
        return found
    if at:  # one motion module, at the step counts asked for
        return [Candidate("student", s, str(run)) for s in at]
    import re

    match = re.search(r"(\d+)step", run.name)
    if not match:
        raise ValueError(
            f"run={run}: not a run directory (no stage_*/summary.json) and its name does not say its step "
            "count (..._4step_...); pass a run directory"
        )
    return [Candidate("student", int(match.group(1)), str(run))]


def baseline_of(run: str | Path | None, family: str = "animatelcm") -> list[Candidate]:
    """The AnimateLCM-style baseline's students (a run of `+experiment=animatelcm_*`), if given."""
    if not run:
        return []
    return [
        Candidate(family, c.steps, c.motion_module, c.sampler, c.guidance_scale, c.image_lora, c.stage)
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
