"""The samplers against diffusers' AnimateDiffPipeline on the same tiny models, latents and noise."""

import pytest
import torch
from diffusers import AnimateDiffPipeline, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from tiny_models import clip_tokenizer, tiny_motion_unet, tiny_text_encoder, tiny_vae

from lightning_distill.diffusion.samplers import (
    dpm_solver_sample,
    euler_sample,
    frame_embeddings,
    guided_eps,
    motion_unet_denoiser,
)
from lightning_distill.diffusion.schedule import NoiseSchedule

PROMPTS = ["a red circle moving left", "a blue square moving up"]
LATENT_SHAPE = (2, 4, 4, 8, 8)  # (B, C, F, H, W): two videos of four 8x8-latent frames


@pytest.fixture(scope="module")
def pipeline():
    """diffusers' own AnimateDiff pipeline around a tiny UNetMotionModel, VAE and CLIP text encoder."""
    return AnimateDiffPipeline(
        vae=tiny_vae(),
        text_encoder=tiny_text_encoder(),
        tokenizer=clip_tokenizer(),
        unet=tiny_motion_unet(),
        motion_adapter=None,
        scheduler=EulerDiscreteScheduler(**NoiseSchedule().diffusers_config(), timestep_spacing="trailing"),
    ).to("cpu")


def encode(pipe, prompts):
    """(B, L, D) embeddings as diffusers' encode_prompt makes them (last hidden state, no clip skip)."""
    ids = pipe.tokenizer(
        prompts,
        padding="max_length",
        max_length=pipe.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    with torch.no_grad():
        return pipe.text_encoder(ids)[0]


def noise():
    return torch.randn(LATENT_SHAPE, generator=torch.Generator().manual_seed(7))


def run_pipeline(pipe, scheduler, num_steps, guidance_scale):
    pipe.scheduler = scheduler
    height = LATENT_SHAPE[3] * pipe.vae_scale_factor
    return pipe(
        prompt=PROMPTS,
        num_frames=LATENT_SHAPE[2],
        height=height,
        width=height,
        num_inference_steps=num_steps,
        guidance_scale=guidance_scale,
        latents=noise(),
        output_type="latent",
    ).frames


@pytest.mark.parametrize(("num_steps", "guidance_scale"), [(4, 1.0), (2, 7.5)])
def test_euler_sampler_matches_animatediff_pipeline(pipeline, num_steps, guidance_scale):
    # Rule off: diffusers starts from sqrt(1 - alpha_bar_T) * z, not pure noise (see NoiseSchedule).
    schedule = NoiseSchedule(pure_noise_at_terminal=False)
    expected = run_pipeline(
        pipeline,
        EulerDiscreteScheduler(**schedule.diffusers_config(), timestep_spacing="trailing"),
        num_steps,
        guidance_scale,
    )
    ours = euler_sample(
        motion_unet_denoiser(pipeline.unet),
        noise(),
        encode(pipeline, PROMPTS),
        num_steps=num_steps,
        schedule=schedule,
        guidance_scale=guidance_scale,
        negative_prompt_embeds=encode(pipeline, ["", ""]),
    )
    assert ours.shape == LATENT_SHAPE
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_dpm_solver_matches_animatediff_pipeline(pipeline):
    schedule = NoiseSchedule()
    scheduler = DPMSolverMultistepScheduler(**schedule.diffusers_config(), algorithm_type="dpmsolver++")
    expected = run_pipeline(pipeline, scheduler, 5, 7.5)
    ours = dpm_solver_sample(
        motion_unet_denoiser(pipeline.unet),
        noise(),
        encode(pipeline, PROMPTS),
        schedule=schedule,
        num_steps=5,
        guidance_scale=7.5,
        negative_prompt_embeds=encode(pipeline, ["", ""]),
    )
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


class PointMassDenoiser:
    """The exact eps for data that is one fixed video x0: eps = (x_t - sqrt(ab) x0) / sqrt(1 - ab).
    Records what it is called with."""

    def __init__(self, schedule, x0):
        self.schedule, self.x0, self.calls = schedule, x0, []

    def __call__(self, x_t, t, encoder_hidden_states):
        self.calls.append((x_t.clone(), t.clone(), encoder_hidden_states.clone()))
        return self.schedule.eps_from_x0(x_t, self.x0.expand_as(x_t), t)


@pytest.mark.parametrize("pure_noise_at_terminal", [True, False])
def test_one_euler_step_is_exact_for_a_point_mass(pure_noise_at_terminal):
    schedule = NoiseSchedule(pure_noise_at_terminal=pure_noise_at_terminal)
    x0 = torch.randn((1, *LATENT_SHAPE[1:]), generator=torch.Generator().manual_seed(1))
    denoiser = PointMassDenoiser(schedule, x0)
    embeds = torch.randn(2, 5, 3)
    z = noise()
    out = euler_sample(denoiser, z, embeds, num_steps=1, schedule=schedule)
    torch.testing.assert_close(out, x0.expand_as(out), rtol=1e-4, atol=1e-4)
    ((x_in, t_in, ehs),) = denoiser.calls
    assert t_in.tolist() == [999, 999]
    # The zero-terminal-SNR rule decides what the model sees first: pure noise, or diffusers' scaled noise.
    expected_start = z if pure_noise_at_terminal else z * (1 - schedule.alpha_bar(999)).sqrt()
    torch.testing.assert_close(x_in, expected_start, rtol=0, atol=0)
    # Text embeddings arrive per frame, each video's repeated for its F frames in a row.
    assert ehs.shape == (2 * LATENT_SHAPE[2], 5, 3)
    assert torch.equal(ehs, frame_embeddings(embeds, LATENT_SHAPE[2]))
    assert torch.equal(ehs[LATENT_SHAPE[2] - 1], embeds[0]) and torch.equal(ehs[LATENT_SHAPE[2]], embeds[1])


def test_dpm_solver_converges_for_a_point_mass():
    schedule = NoiseSchedule()
    x0 = torch.randn((1, *LATENT_SHAPE[1:]), generator=torch.Generator().manual_seed(2))
    denoiser = PointMassDenoiser(schedule, x0)
    out = dpm_solver_sample(
        denoiser, noise(), torch.randn(2, 5, 3), schedule=schedule, num_steps=8, guidance_scale=1.0
    )
    torch.testing.assert_close(out, x0.expand_as(out), rtol=1e-3, atol=1e-3)
    assert len(denoiser.calls) == 8


def test_guidance_batches_uncond_then_cond():
    seen = []

    def denoiser(x_t, t, ehs):
        seen.append(ehs)
        # eps = the mean of the frame's text embedding, so the guided result is checkable by hand.
        return ehs.mean(dim=(1, 2)).reshape(x_t.shape[0], 1, x_t.shape[2], 1, 1).expand_as(x_t)

    x_t = torch.zeros(1, 2, 3, 2, 2)
    cond, uncond = torch.full((1, 4, 2), 2.0), torch.full((1, 4, 2), 1.0)
    eps = guided_eps(denoiser, x_t, torch.tensor([999]), cond, uncond, guidance_scale=7.5)
    assert seen[0].shape == (2 * 3, 4, 2) and torch.equal(seen[0][:3], uncond.expand(3, 4, 2))
    torch.testing.assert_close(eps, torch.full_like(x_t, 1.0 + 7.5 * (2.0 - 1.0)))
    assert torch.equal(
        guided_eps(denoiser, x_t, torch.tensor([999]), cond, None, 1.0), torch.full_like(x_t, 2.0)
    )


def test_bad_inputs_name_the_problem():
    schedule = NoiseSchedule()
    denoiser = PointMassDenoiser(schedule, torch.zeros(1, 4, 4, 8, 8))
    with pytest.raises(ValueError, match="negative_prompt_embeds"):
        euler_sample(
            denoiser, noise(), torch.randn(2, 5, 3), num_steps=2, schedule=schedule, guidance_scale=3.0
        )
    with pytest.raises(ValueError, match=r"\(B, C, F, H, W\)"):
        euler_sample(denoiser, torch.randn(2, 4, 8, 8), torch.randn(2, 5, 3), num_steps=2, schedule=schedule)
    with pytest.raises(ValueError, match="one per video"):
        euler_sample(denoiser, noise(), torch.randn(8, 5, 3), num_steps=2, schedule=schedule)
