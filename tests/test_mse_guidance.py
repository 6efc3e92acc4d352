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


def test_each_member_is_distilled_at_its_own_guidance_scale_or_the_recipes(monkeypatch):
    run_at = {}

    def recording_teacher_moves(unet, schedule, x_t, path, states, negative, guidance_scale):
        run_at[current] = (guidance_scale, None if negative is None else float(negative.abs().sum()))
        return x_t.detach().clone()

    monkeypatch.setattr(mse, "teacher_moves", recording_teacher_moves)
    adapter = build_motion_adapter(0)
    scales = {"recipes": None, "own_7_5": 7.5, "unguided": 1.0}
    members = {
        name: Member(name, i, UNetMotionModel.from_unet2d(build_unet(i), adapter), Captions(), scale)
        for i, (name, scale) in enumerate(scales.items())
    }
    stage = mse.MSEStage(
        StagePlan(0, "mse_128_to_32", "mse", 128, 32),
        members,
        copy.deepcopy(adapter),
        adapter,
        NoiseSchedule(),
        seed=0,
        guidance_scale=3.0,
    )
    for current in members:
        latents = torch.randn(1, LATENT_CHANNELS, 2, 8, 8)
        stage.training_step({"member": current, "latents": latents, "captions": ["a red square"]}, 0)
    # Guided teachers get the empty prompt's states as the unconditional input; an unguided one none.
    assert run_at == {"recipes": (3.0, 0.0), "own_7_5": (7.5, 0.0), "unguided": (1.0, None)}


def test_a_guidance_scale_below_one_names_the_member_and_the_fix():
    with pytest.raises(ValueError, match=r"base model 'neon'.*guidance_scale must be at least 1.*null"):
        BaseModelSpec(name="neon", kind="toy", path="x", style="neon", guidance_scale=0.5)


def test_a_members_guidance_scale_is_set_on_the_command_line_and_defaults_to_the_recipes():
    pool = instantiate(compose(["+experiment=4step", "pool.members.toy_neon.guidance_scale=7.5"]).pool)
    assert pool.members["toy_neon"].guidance_scale == 7.5
    assert all(spec.guidance_scale is None for name, spec in pool.members.items() if name != "toy_neon")
