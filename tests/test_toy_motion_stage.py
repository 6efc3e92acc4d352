"""The toy motion stage's loss: the ordinary epsilon loss unchanged when nothing is held still (the shipped
teacher's recipe), and held_still_loss on the share of the batch that is."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lightning_distill.diffusion.schedule import NoiseSchedule
from lightning_distill.toy.teacher.denoising import caption_embeddings, denoising_loss, held_still_loss
from lightning_distill.toy.teacher.motion_stage import ToyMotionModuleTraining

FRAMES = 4


class _FakeMotionUNet(torch.nn.Module):
    """eps = a learnt scale times x_t plus the per-frame text states' mean; records what it was given."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.seen = []

    def forward(self, x, t, encoder_hidden_states):
        self.seen.append((x.detach().clone(), t.clone(), encoder_hidden_states.shape))
        text = encoder_hidden_states.mean(dim=(1, 2)).reshape(x.shape[0], 1, x.shape[2], 1, 1)
        return SimpleNamespace(sample=self.scale * x + text)


def _stage(still_fraction: float, seed: int = 3) -> tuple[ToyMotionModuleTraining, _FakeMotionUNet, dict]:
    unet = _FakeMotionUNet()
    table = {caption: torch.full((2, 3), float(i)) for i, caption in enumerate(["", "a", "b"])}
    stage = ToyMotionModuleTraining(
        {"flat": unet}, [unet.scale], table, lr=1e-3, high_noise_fraction=0.5, seed=seed,
        still_fraction=still_fraction, still_from=700,
    )  # fmt: skip
    stage.log = lambda *args, **kwargs: None  # no trainer attached
    latents = torch.randn(4, 2, FRAMES, 3, 3, generator=torch.Generator().manual_seed(0))
    return stage, unet, {"style": "flat", "latents": latents, "captions": ["a", "b", "a", "b"]}


def _denoise(unet):
    return lambda x, t, s: unet(x, t, encoder_hidden_states=s.repeat_interleave(FRAMES, dim=0)).sample


def test_nothing_held_still_is_the_ordinary_loss_draw_for_draw():
    stage, unet, batch = _stage(0.0)
    loss = stage.training_step(batch, 0)
    generator = torch.Generator().manual_seed(3)
    states = caption_embeddings(batch["captions"], stage.text_table, 0.1, generator)
    expected = denoising_loss(_denoise(unet), batch["latents"], states, NoiseSchedule(), generator, 0.5)
    assert torch.equal(loss, expected)


def test_half_held_still_adds_the_x0_loss_of_the_first_half():
    stage, unet, batch = _stage(0.5)
    loss = stage.training_step(batch, 0)
    assert len(unet.seen) == 2
    held_x, held_t, _ = unet.seen[1]
    assert held_x.shape[0] == 2 and bool((held_t >= 700).all())

    generator = torch.Generator().manual_seed(3)
    schedule = NoiseSchedule()
    states = caption_embeddings(batch["captions"], stage.text_table, 0.1, generator)
    latents = batch["latents"]
    ordinary = denoising_loss(_denoise(unet), latents[2:], states[2:], schedule, generator, 0.5)
    held = held_still_loss(_denoise(unet), latents[:2], states[:2], schedule, generator, 700)
    assert torch.allclose(loss, ordinary + held)


def test_held_still_x_t_shows_the_middle_frame_in_every_frame_and_is_scored_against_the_clip():
    schedule = NoiseSchedule()
    latents = torch.randn(3, 2, FRAMES, 3, 3, generator=torch.Generator().manual_seed(1))
    seen = {}

    def knows_the_clip(x_t, t, states):  # returns the eps that gives back the moving clip exactly
        seen["x_t"], seen["t"] = x_t, t
        return schedule.eps_from_x0(x_t, latents, t)

    perfect = held_still_loss(knows_the_clip, latents, None, schedule, torch.Generator().manual_seed(2), 900)
    assert float(perfect) == pytest.approx(0.0, abs=1e-8)
    generator = torch.Generator().manual_seed(2)
    t = torch.randint(900, 1000, (3,), generator=generator)
    noise = torch.randn(latents.shape, generator=generator)
    still = latents[:, :, FRAMES // 2 : FRAMES // 2 + 1].expand_as(latents)
    assert torch.equal(seen["t"], t)
    assert torch.allclose(seen["x_t"], schedule.add_noise(still, noise, t))

    def knows_the_still_frame(x_t, t, states):  # a denoiser that keeps the still frame: scored as wrong
        return schedule.eps_from_x0(x_t, still, t)

    kept = held_still_loss(
        knows_the_still_frame, latents, None, schedule, torch.Generator().manual_seed(2), 900
    )
    assert float(kept) == pytest.approx(float(F.mse_loss(still, latents)), rel=1e-4)


def test_a_share_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="still_fraction must be in"):
        _stage(1.5)
