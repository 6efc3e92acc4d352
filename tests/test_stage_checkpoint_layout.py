"""A stage checkpoint resumes only into a stage whose trained weights have the same names and shapes: one
written by another layout (a discriminator head with more blocks, say) fails with one message that says
what to do, instead of resuming with weights left as initialised."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNetMotionModel

from lightning_distill.diffusion.schedule import NoiseSchedule
from lightning_distill.models.discriminator import Discriminator
from lightning_distill.stages.adversarial import AdversarialStage
from lightning_distill.stages.chain import StagePlan
from lightning_distill.toy.models import build_motion_adapter, build_unet


def stage(feature_level) -> AdversarialStage:
    torch.manual_seed(0)
    unet = UNetMotionModel.from_unet2d(build_unet(0), build_motion_adapter(0))
    discriminator = Discriminator.from_unet(
        unet, num_base_models=2, latent_shape=(8, 8, 8), feature_level=feature_level
    )
    return AdversarialStage(
        plan=StagePlan(1, "adversarial_32_to_8", "adversarial", 32, 8),
        members={},
        student=build_motion_adapter(0),
        teacher=build_motion_adapter(0),
        schedule=NoiseSchedule(),
        seed=0,
        discriminator=discriminator,
        conditional_steps=2,
        unconditional_steps=1,
    )


def test_a_checkpoint_of_the_same_layout_is_accepted():
    module = stage(1)
    module.on_load_checkpoint({"state_dict": stage(1).state_dict()})


def test_a_checkpoint_of_another_discriminator_layout_is_refused():
    module = stage(1)
    other = stage("mid").state_dict()
    with pytest.raises(RuntimeError, match=r"adversarial_32_to_8: its checkpoint .* delete it"):
        module.on_load_checkpoint({"state_dict": other})


def test_a_checkpoint_missing_a_trained_weight_is_refused():
    module = stage(1)
    state = module.state_dict()
    state.pop(next(k for k in state if k.startswith("discriminator.conditional_head.")))
    with pytest.raises(RuntimeError, match=r"missing \(1\)"):
        module.on_load_checkpoint({"state_dict": state})
