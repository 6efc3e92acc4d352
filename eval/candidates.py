"""What an evaluation compares: the distilled students of a run (every stage's student at its step count,
so a 4-step run also yields its 32- and 8-step models), a single exported motion module, the teacher at
its full sampler and run naively at few steps, and the AnimateLCM-style baseline when one was trained.

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

    @property
    def key(self) -> str:
        return f"{self.family}_{self.steps}"

    @property
    def label(self) -> str:
        names = {
            "student": "AnimateDiff-Lightning student",
            "teacher_full": "teacher, DPM-Solver++, CFG 7.5",
            "teacher_naive": "teacher, Euler, no CFG",
            "animatelcm": "AnimateLCM-style baseline",
        }
        return f"{names[self.family]}, {self.steps} step{'' if self.steps == 1 else 's'}"


def students_of(run: str | Path) -> list[Candidate]:
    """Every finished stage's student of a run directory, or the one motion module `run` points to (its
    step count from the file name `..._<n>step...` or the run's result.json)."""
    run = Path(run)
    if not run.exists():
        raise FileNotFoundError(f"run={run}: no such run directory or motion module")
    found = []
    for summary_path in sorted(run.glob("stage_*/summary.json")):
        summary = json.loads(summary_path.read_text())
        student = summary_path.parent / "student"
        if not student.is_dir():
            continue
        if summary.get("objective") == "consistency":  # one model, sampled at several step counts
            lora = str(summary_path.parent / summary["image_lora"])
            for steps in summary["sample_steps"]:
                found.append(Candidate("student", int(steps), str(student), "consistency", image_lora=lora))
        else:
            found.append(Candidate("student", int(summary["student_steps"]), str(student)))
    if found:
        return found
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
