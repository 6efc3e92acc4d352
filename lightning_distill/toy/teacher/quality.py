"""The toy teacher's quality gate: judge-measured metrics of the teacher on every style's base model
(the held-out one included), at its full sampler and run naively at 1, 2, 4 and 8 Euler steps without
guidance: the gap distillation must close. Written into teacher.json under "quality" and shown in the
README's results."""

from __future__ import annotations

import logging
from pathlib import Path

from diffusers import UNetMotionModel

from lightning_distill.models.base_model import BaseModelSpec
from lightning_distill.models.loading import load_base_model
from lightning_distill.toy.evaluate import TEACHER_FULL, score_generator
from lightning_distill.toy.metrics import toy_prompts
from lightning_distill.toy.teacher import folder as parts
from lightning_distill.toy.world import DEFAULT_FRAMES, DEFAULT_SIZE, HELD_OUT_STYLE, STYLES, base_model_of

log = logging.getLogger("lightning_distill.toy")
NAIVE_STEPS = (1, 2, 4, 8)


def measure_teacher(folder: Path, clips_per_style: int, seed: int) -> dict:
    prompts = toy_prompts(clips_per_style, seed)
    adapter = parts.load_motion_adapter(folder)
    full, naive = {}, {}
    for style in STYLES:
        name = base_model_of(style)
        base = load_base_model(BaseModelSpec(name=name, kind="toy", path=str(folder), style=style))
        unet = UNetMotionModel.from_unet2d(base.unet, adapter).eval()

        def score(unet=unet, base=base, style=style, **sampler):
            return score_generator(unet, base, style, prompts, seed, DEFAULT_FRAMES, DEFAULT_SIZE, **sampler)

        full[name] = score(**TEACHER_FULL)
        naive[name] = {str(steps): score(sampler="euler", steps=steps) for steps in NAIVE_STEPS}
        log.info(
            "teacher on %s: full sampler prompt accuracy %.3f, style fidelity %.3f",
            name, full[name]["prompt_accuracy"], full[name]["style_fidelity"],
        )  # fmt: skip
    return {
        "protocol": {"clips_per_style": clips_per_style, "seed": seed},
        "held_out": base_model_of(HELD_OUT_STYLE),
        "teacher_full": full,
        "teacher_naive": naive,
    }


def quality_table(quality: dict) -> str:
    """The README's teacher table from teacher.json's "quality": per base model, the full sampler's
    prompt accuracy (with each attribute's), style fidelity and toy-FVD, then the naive runs' prompt
    accuracy and toy-FVD at 1, 2, 4, 8 steps.

        python -c "from lightning_distill.toy.teacher.quality import print_table; print_table()"
    """
    lines = [
        "| base model | full: prompt acc. (shape / colour / motion) | style | toy-FVD | naive 1 / 2 / 4 / 8: prompt acc. | naive toy-FVD |",
        "|---|---|---|---|---|---|",
    ]
    for name, full in quality["teacher_full"].items():
        a = full["accuracy"]
        naive = quality["teacher_naive"][name]
        held = " (held out)" if name == quality.get("held_out") else ""
        lines.append(
            f"| {name}{held} | {full['prompt_accuracy']:.3f} ({a['shape']:.2f} / {a['colour']:.2f} / {a['motion']:.2f}) "
            f"| {full['style_fidelity']:.3f} | {full['toy_fvd']:.1f} | "
            + " / ".join(f"{naive[s]['prompt_accuracy']:.3f}" for s in sorted(naive, key=int))
            + " | "
            + " / ".join(f"{naive[s]['toy_fvd']:.0f}" for s in sorted(naive, key=int))
            + " |"
        )
    clips = quality["protocol"]["clips_per_style"]
    return (
        "\n".join(lines)
        + f"\n\n{clips} clips per base model, seed {quality['protocol']['seed']}, judge-measured.\n"
    )


def print_table(folder: Path = parts.SHIPPED) -> None:
    print(quality_table(parts.read_info(folder)["quality"]))
