"""The toy metrics of a finished run: the student at its step count next to the teacher run naively at
the same step count (Euler, no guidance) and the teacher at its full sampler (32-step DPM-Solver++, CFG
7.5), for every pool member and held-out base model, written as metrics.json and metrics.md.

The teacher's numbers do not change from run to run: its full sampler's, and its naive run's at 1, 2, 4
and 8 steps, are read from the toy teacher's `teacher.json` when it measured them under the same protocol
(prompts, clip count, seed; the same generation code); otherwise the naive run is measured here, and the
full sampler too with `metrics.teacher_full=true`, which costs minutes on a CPU.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig

from lightning_distill.atomic import write_bytes_atomic
from lightning_distill.stages.motion_modules import using
from lightning_distill.toy.evaluate import TEACHER_FULL, score_generator
from lightning_distill.toy.metrics import toy_prompts

log = logging.getLogger("lightning_distill")


def protocol(cfg: DictConfig) -> dict:
    return {"clips_per_style": int(cfg.metrics.clips_per_style), "seed": int(cfg.metrics.seed)}


def teacher_from_info(cfg: DictConfig, steps: int) -> tuple[dict, dict]:
    """The chain's teacher's metrics per base model as its teacher.json has them under this protocol:
    (full sampler, naive Euler at `steps`); empty where it has none."""
    from lightning_distill.toy.teacher.folder import read_info

    quality = read_info(Path(str(cfg.teacher.motion_module)).parent).get("quality", {})
    if quality.get("protocol") != protocol(cfg):
        return {}, {}
    naive = {
        name: runs[str(steps)]
        for name, runs in quality.get("teacher_naive", {}).items()
        if str(steps) in runs
    }
    return quality.get("teacher_full", {}), naive


def measure_run(cfg: DictConfig, members: dict, teacher, steps: int, run_dir: Path) -> dict:
    prompts = toy_prompts(int(cfg.metrics.clips_per_style), int(cfg.metrics.seed))
    frames, size, seed = int(cfg.data.frames), int(cfg.data.size), int(cfg.metrics.seed)

    def score(unet, base, style, **sampler):
        return score_generator(unet, base, style, prompts, seed, frames, size, **sampler)

    known_full, known_naive = teacher_from_info(cfg, steps)
    table = {}
    for name, (unet, base, style, seen) in members.items():
        row = {"style": style, "seen": seen}
        row["student"] = score(unet, base, style, sampler="euler", steps=steps)
        if name in known_naive:
            row["teacher_naive"] = known_naive[name]
        if name in known_full:
            row["teacher_full"] = known_full[name]
        measure_full = "teacher_full" not in row and cfg.metrics.get("teacher_full")
        if "teacher_naive" not in row or measure_full:  # the teacher's weights only when it must sample
            with using(unet, teacher):
                if "teacher_naive" not in row:
                    row["teacher_naive"] = score(unet, base, style, sampler="euler", steps=steps)
                if measure_full:
                    row["teacher_full"] = score(unet, base, style, **TEACHER_FULL)
        table[name] = row
        log.info(
            "metrics %s: %s",
            name,
            {k: v.get("prompt_accuracy") for k, v in row.items() if isinstance(v, dict)},
        )
    result = {
        "protocol": {**protocol(cfg), "student_steps": steps, "teacher_full": TEACHER_FULL},
        "models": table,
    }
    write_bytes_atomic(run_dir / "metrics.json", (json.dumps(result, indent=2) + "\n").encode())
    write_bytes_atomic(run_dir / "metrics.md", markdown_table(result).encode())
    return result


def markdown_table(result: dict) -> str:
    steps = result["protocol"]["student_steps"]
    lines = [
        "| base model | seen | model | prompt accuracy | style fidelity | toy-FVD |",
        "|---|---|---|---|---|---|",
    ]
    names = {
        "student": f"student, {steps} steps",
        "teacher_naive": f"teacher, {steps} Euler steps",
        "teacher_full": "teacher, 32 DPM++ steps, CFG 7.5",
    }
    for name, row in result["models"].items():
        for key, label in names.items():
            if key in row:
                m = row[key]
                lines.append(
                    f"| {name} | {'yes' if row['seen'] else 'held out'} | {label} | {m['prompt_accuracy']:.3f} | "
                    f"{m['style_fidelity']:.3f} | {m['toy_fvd']:.2f} |"
                )
    clips = result["protocol"]["clips_per_style"]
    return "\n".join(lines) + f"\n\n{clips} clips per base model, judge-measured (docs/TOY_WORLD.md).\n"
