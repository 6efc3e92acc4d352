"""The MSE stage runs each member's teacher at that member's own CFG scale where its config sets one, and at
the recipe's otherwise (BaseModelSpec.guidance_scale)."""

from __future__ import annotations

import copy

import pytest
import torch
from diffusers import UNetMotionModel
from hydra.utils import instantiate

from lightning_distill.config import compose
from lightning_distill.diffusion.schedule import NoiseSchedule
from lightning_distill.models.base_model import BaseModelSpec
from lightning_distill.stages import mse
from lightning_distill.stages.chain import StagePlan
from lightning_distill.stages.members import Member
from lightning_distill.toy.models import (
    CROSS_ATTENTION_DIM,
    LATENT_CHANNELS,
    build_motion_adapter,
    build_unet,
)


class Captions:
    """A text encoder stand-in: the empty prompt encodes to zeros, any other caption to ones."""

    def encode_prompts(self, captions):
        return torch.stack([torch.full((77, CROSS_ATTENTION_DIM), float(bool(c))) for c in captions])


def guidance_run_at(monkeypatch, stage_scale: float, member_scales: dict) -> dict:
    """{member: (the scale its teacher ran at, |empty-prompt states| or None)} after one MSE step each."""
    run_at = {}
    adapter = build_motion_adapter(0)
    members = {
        name: Member(name, i, UNetMotionModel.from_unet2d(build_unet(i), adapter), Captions(), scale)
        for i, (name, scale) in enumerate(member_scales.items())
    }
    stage = mse.MSEStage(
        StagePlan(0, "mse_128_to_32", "mse", 128, 32),
        members,
        copy.deepcopy(adapter),
        adapter,
        NoiseSchedule(),
        seed=0,
        guidance_scale=stage_scale,
    )
    monkeypatch.setattr(stage, "log", lambda *args, **kwargs: None)  # no trainer to log to
    monkeypatch.setattr(stage, "log_dict", lambda *args, **kwargs: None)
    for name in members:

        def recording_teacher_moves(unet, schedule, x_t, path, states, negative, guidance_scale, name=name):
            run_at[name] = (guidance_scale, None if negative is None else float(negative.abs().sum()))
            return x_t.detach().clone()

        monkeypatch.setattr(mse, "teacher_moves", recording_teacher_moves)
        latents = torch.randn(1, LATENT_CHANNELS, 2, 8, 8)
        stage.training_step({"member": name, "latents": latents, "captions": ["a red square"]}, 0)
    return run_at


def test_each_member_is_distilled_at_its_own_guidance_scale_or_the_stages(monkeypatch):
    run_at = guidance_run_at(monkeypatch, 3.0, {"recipes": None, "own_7_5": 7.5, "unguided": 1.0})
    # Guided teachers get the empty prompt's states as the unconditional input; an unguided one none.
    assert run_at == {"recipes": (3.0, 0.0), "own_7_5": (7.5, 0.0), "unguided": (1.0, None)}


def test_a_stage_that_does_not_guide_guides_no_member(monkeypatch):
    # A later MSE stage (its teacher already carries the guidance) must not guide a member a second time.
    run_at = guidance_run_at(monkeypatch, 1.0, {"recipes": None, "own_7_5": 7.5})
    assert run_at == {"recipes": (1.0, None), "own_7_5": (1.0, None)}


def test_a_guidance_scale_below_one_names_the_member_and_the_fix():
    with pytest.raises(ValueError, match=r"base model 'neon'.*guidance_scale must be at least 1.*null"):
        BaseModelSpec(name="neon", kind="toy", path="x", style="neon", guidance_scale=0.5)


def test_a_members_guidance_scale_is_set_on_the_command_line_and_defaults_to_the_recipes():
    pool = instantiate(compose(["+experiment=4step", "pool.members.toy_neon.guidance_scale=7.5"]).pool)
    assert pool.members["toy_neon"].guidance_scale == 7.5
    assert all(spec.guidance_scale is None for name, spec in pool.members.items() if name != "toy_neon")
