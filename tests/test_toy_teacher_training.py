"""The toy teacher's training pipeline end to end at a handful of steps per stage (mechanics only: these
weights are never reported), its resume-by-part, and the learning-rate schedules its stages share."""

from __future__ import annotations

import itertools
import json
import shutil

import pytest
import torch

from lightning_distill.config import compose
from lightning_distill.toy.teacher import folder as parts
from lightning_distill.toy.teacher.denoising import warmup_schedule
from lightning_distill.toy.teacher.run import (
    PRETRAINED_MOTION,
    PRETRAINED_UNET,
    part_chains,
    still_cycle_part,
    train_toy_teacher,
)
from lightning_distill.toy.world import STYLES


def _tiny_overrides(tmp_path) -> list[str]:
    steps = {
        name: [f"toy_teacher.{name}.steps=2", f"toy_teacher.{name}.batch_size=4"]
        for name in ("vae", "text_encoder", "unet", "unet_anneal", "style_lora", "motion", "motion_still")
    }
    return [
        "+experiment=toy_teacher",
        f"paths.output={tmp_path / 'runs'}",
        f"paths.data={tmp_path / 'data'}",
        f"toy_teacher.output={tmp_path / 'teacher'}",
        "toy_teacher.clips_per_style=4",
        "metrics.clips_per_style=2",
        *[override for pair in steps.values() for override in pair],
    ]


def _tiny_teacher_config(tmp_path):
    return compose(_tiny_overrides(tmp_path))


def test_toy_teacher_trains_every_part_then_resumes_without_redoing_any(tmp_path):
    shipped = {p: p.stat().st_mtime_ns for p in parts.SHIPPED.rglob("*") if p.is_file()}
    cfg = _tiny_teacher_config(tmp_path)
    out = tmp_path / "teacher"
    train_toy_teacher(cfg)

    assert cfg.toy_teacher.motion_still.cycles == 2
    for part in ("vae", "text_encoder", PRETRAINED_UNET, "unet", PRETRAINED_MOTION, still_cycle_part(1)):
        assert parts.has_component(out, part), part
    assert parts.styles_in(out) == sorted(STYLES)
    pretrained = parts.load_unet(out, part=PRETRAINED_UNET).state_dict()
    annealed = parts.load_unet(out).state_dict()
    assert any(not torch.equal(pretrained[k], annealed[k]) for k in annealed)  # annealing trained it
    first = parts.load_motion_adapter(out, part=PRETRAINED_MOTION).state_dict()
    cycle_one = parts.load_motion_adapter(out, part=still_cycle_part(1)).state_dict()
    held_still = parts.load_motion_adapter(out).state_dict()
    # each held-still cycle trained it further
    assert any(not torch.equal(first[k], cycle_one[k]) for k in cycle_one)
    assert any(not torch.equal(cycle_one[k], held_still[k]) for k in held_still)
    # A part continued from another (unet, motion_module) does not record where it was loaded from.
    assert not any("_name_or_path" in json.loads(f.read_text()) for f in out.rglob("config.json"))

    info = parts.read_info(out)
    assert set(info["stage_seconds"]) >= {
        "vae",
        PRETRAINED_UNET,
        "unet",
        PRETRAINED_MOTION,
        still_cycle_part(1),
        "motion_module",
        "quality",
    }
    quality = info["quality"]
    assert set(quality["teacher_full"]) == {f"toy_{style}" for style in STYLES}
    assert all(set(naive) == {"1", "2", "4", "8"} for naive in quality["teacher_naive"].values())
    assert info["config"]["unet_anneal"]["module"]["lr_decay"] == "cosine"

    written = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != parts.INFO}
    seconds = info["stage_seconds"]
    train_toy_teacher(cfg)  # every part is there: nothing is trained or measured again
    assert {p: p.stat().st_mtime_ns for p in written} == written
    assert parts.read_info(out)["stage_seconds"] == seconds
    # install=false leaves the shipped teacher alone
    assert {p: p.stat().st_mtime_ns for p in parts.SHIPPED.rglob("*") if p.is_file()} == shipped


def _rates(decay: str, steps: int = 1000, warmup: int = 100) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = warmup_schedule(optimizer, steps, decay, warmup)
    rates = []
    for _ in range(steps + 1):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def test_warmup_then_constant_or_cosine_to_zero():
    constant, cosine = _rates("constant"), _rates("cosine")
    assert constant[0] == pytest.approx(0.01) and constant[99:] == [1.0] * len(constant[99:])
    assert cosine[0] == pytest.approx(0.01)
    assert cosine[500] == pytest.approx(0.5, abs=1e-9)  # half way: half the rate
    assert cosine[1000] == pytest.approx(0.0, abs=1e-12)  # annealed to zero at the last step
    assert all(a >= b for a, b in itertools.pairwise(cosine[100:]))


def test_held_still_cycles_chain_their_parts_and_a_bad_count_is_one_clear_error():
    assert part_chains(1)[1] == [PRETRAINED_MOTION, "motion_module"]
    assert part_chains(3)[1] == [
        PRETRAINED_MOTION,
        "motion_module_still1",
        "motion_module_still2",
        "motion_module",
    ]
    for bad in (0, -1, 1.5, "two", True):
        with pytest.raises(ValueError, match=r"motion_still\.cycles=.*whole number of at least 1"):
            part_chains(bad)


def test_an_unknown_decay_is_one_clear_error():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="lr_decay 'linear' is not one of constant, cosine"):
        warmup_schedule(optimizer, 10, "linear")


def test_the_shipped_teacher_records_how_it_was_made():
    info = json.loads((parts.SHIPPED / parts.INFO).read_text())
    assert info["command"].startswith("python -m lightning_distill +experiment=toy_teacher")
    assert info["seed"] == 0 and "quality" in info


# Slow: a second teacher run with its quality table (about a minute each); the default run's test above
# trains every motion phase, these the resume from a folder made before a later one existed.
@pytest.mark.slow
@pytest.mark.parametrize("made_before", [PRETRAINED_MOTION, still_cycle_part(1)])
def test_a_teacher_folder_without_the_later_held_still_phases_resumes_at_them(tmp_path, made_before):
    """A teacher made before the held-still phase existed (its motion module becomes the first phase's
    part), or before its second cycle (the first cycle's part), is finished by the same command: only the
    missing cycles and the quality table run."""
    out = tmp_path / "teacher"
    shutil.copytree(parts.SHIPPED, out, ignore=shutil.ignore_patterns("motion_module"))
    shutil.copytree(parts.SHIPPED / "motion_module", out / made_before)
    info = parts.read_info(out)
    del info["quality"]
    parts.write_info(out, info)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != parts.INFO}
    train_toy_teacher(_tiny_teacher_config(tmp_path))

    assert {p: p.stat().st_mtime_ns for p in before} == before  # no earlier part trained again
    assert not parts.has_component(out, PRETRAINED_UNET)  # `unet` is there: its first phase is not redone
    assert parts.has_component(out, still_cycle_part(1))
    first = parts.load_motion_adapter(out, part=made_before).state_dict()
    continued = parts.load_motion_adapter(out).state_dict()
    assert any(not torch.equal(first[k], continued[k]) for k in first)  # it trained
    # ... from the given weights (a few small steps), not from the identity (zero output projections)
    out_projection = next(k for k in continued if k.endswith("proj_out.weight"))
    assert continued[out_projection].abs().sum() > 0
    assert (continued[out_projection] - first[out_projection]).abs().max() < 0.05
    info = parts.read_info(out)
    assert info["config"]["motion_still"]["module"]["still_fraction"] == 0.5
    assert set(info["stage_seconds"]) >= {"motion_module", "quality"} and "quality" in info
