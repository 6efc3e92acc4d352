"""Samplers: the N-step trailing Euler sampler that distilled students run, and DPM-Solver++ for teacher data.

Both drive a **denoiser**, any callable

    denoiser(x_t: (B, C, F, H, W), t: (B,) int64, encoder_hidden_states: (B*F, L, D)) -> eps (B, C, F, H, W)

in DDPM space (see ``schedule``). ``motion_unet_denoiser`` wraps a diffusers ``UNetMotionModel``. Text
embeddings come in per video, (B, L, D), and are repeat-interleaved per frame here, as diffusers'
``AnimateDiffPipeline`` does. Classifier-free guidance batches [uncond, cond] into one call, in that order,
and applies eps_u + g * (eps_c - eps_u) when g > 1 (g = 1 means no guidance and no second half).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lightning_distill.diffusion.schedule import CLEAN, NoiseSchedule

Denoiser = Callable[[Tensor, Tensor, Tensor], Tensor]


def motion_unet_denoiser(unet: torch.nn.Module) -> Denoiser:
    """Wrap a diffusers ``UNetMotionModel`` as a denoiser: inputs are cast to the UNet's dtype, eps comes
    back in float32 so that the solver's arithmetic stays in full precision under a bf16 UNet."""

    def denoise(x_t: Tensor, t: Tensor, encoder_hidden_states: Tensor) -> Tensor:
        dtype = unet.dtype
        out = unet(x_t.to(dtype), t, encoder_hidden_states=encoder_hidden_states.to(dtype)).sample
        return out.float()

    return denoise


def frame_embeddings(prompt_embeds: Tensor, num_frames: int) -> Tensor:
    """(B, L, D) per-video text embeddings -> (B*F, L, D), each repeated for its F frames in a row."""
    return prompt_embeds.repeat_interleave(num_frames, dim=0)


def guided_eps(
    denoiser: Denoiser,
    x_t: Tensor,
    t: Tensor,
    prompt_embeds: Tensor,
    negative_prompt_embeds: Tensor | None = None,
    guidance_scale: float = 1.0,
) -> Tensor:
    """eps for x_t (B, C, F, H, W) at t (B,), with classifier-free guidance when guidance_scale > 1.

    prompt_embeds, negative_prompt_embeds: (B, L, D). The unconditional embedding is the caller's choice
    (the paper uses the empty prompt's embedding: "no negative prompt").
    """
    num_frames = x_t.shape[2]
    if guidance_scale <= 1.0:
        return denoiser(x_t, t, frame_embeddings(prompt_embeds, num_frames))
    if negative_prompt_embeds is None:
        raise ValueError(
            f"guided_eps: guidance_scale={guidance_scale} > 1 needs negative_prompt_embeds (the empty prompt's "
            "embedding for 'no negative prompt'); pass them, or set guidance_scale=1 to sample without CFG"
        )
    embeds = torch.cat([negative_prompt_embeds, prompt_embeds])
    eps = denoiser(torch.cat([x_t, x_t]), torch.cat([t, t]), frame_embeddings(embeds, num_frames))
    eps_uncond, eps_cond = eps.chunk(2)
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)


def _check_inputs(noise: Tensor, prompt_embeds: Tensor, sampler: str) -> None:
    if noise.ndim != 5:
        raise ValueError(
            f"{sampler}: noise must be video latents (B, C, F, H, W), got shape {tuple(noise.shape)}"
        )
    if prompt_embeds.ndim != 3 or prompt_embeds.shape[0] != noise.shape[0]:
        raise ValueError(
            f"{sampler}: prompt_embeds must be (B, L, D) with B = {noise.shape[0]} (one per video, not per "
            f"frame), got shape {tuple(prompt_embeds.shape)}"
        )


@torch.no_grad()
def euler_sample(
    denoiser: Denoiser,
    noise: Tensor,
    prompt_embeds: Tensor,
    *,
    num_steps: int,
    schedule: NoiseSchedule,
    guidance_scale: float = 1.0,
    negative_prompt_embeds: Tensor | None = None,
    progress: bool = False,
) -> Tensor:
    """N-step Euler with trailing timesteps: how AnimateDiff-Lightning students sample (model card).

    Args:
        noise: unit Gaussian (B, C, F, H, W); sampling starts at ``schedule.terminal_latents(noise)``.
        prompt_embeds, negative_prompt_embeds: (B, L, D) text embeddings of the base model's encoder.
        num_steps: the number of moves (model calls without CFG), from t = T-1 down to clean.
    Returns:
        x0 latents (B, C, F, H, W), float32, in the VAE's scaled latent space (divide by the VAE's
        scaling_factor before decoding).
    """
    _check_inputs(noise, prompt_embeds, "euler_sample")
    steps = schedule.trailing_timesteps(num_steps).tolist()
    return euler_moves(
        denoiser,
        schedule.terminal_latents(noise.float()),
        [*steps, CLEAN],
        prompt_embeds,
        schedule=schedule,
        guidance_scale=guidance_scale,
        negative_prompt_embeds=negative_prompt_embeds,
        progress=progress,
        description=f"euler {num_steps} steps",
    )


@torch.no_grad()
def euler_moves(
    denoiser: Denoiser,
    x: Tensor,
    timesteps: list[int],
    prompt_embeds: Tensor,
    *,
    schedule: NoiseSchedule,
    guidance_scale: float = 1.0,
    negative_prompt_embeds: Tensor | None = None,
    progress: bool = False,
    description: str = "euler",
) -> Tensor:
    """Euler moves from x (B, C, F, H, W) at timesteps[0] to each next timestep in turn (CLEAN: the
    predicted x0): the sampler's loop, also run from a partly noised clip (toy/teacher/direction.py)."""
    batch = x.shape[0]
    for t_now, t_next in tqdm(
        itertools.pairwise(timesteps), total=len(timesteps) - 1, disable=not progress, desc=description
    ):
        t = torch.full((batch,), int(t_now), dtype=torch.long, device=x.device)
        eps = guided_eps(denoiser, x, t, prompt_embeds, negative_prompt_embeds, guidance_scale)
        x = schedule.move(x, eps, t, torch.full_like(t, int(t_next)))
    return x


@torch.no_grad()
def dpm_solver_sample(
    denoiser: Denoiser,
    noise: Tensor,
    prompt_embeds: Tensor,
    *,
    schedule: NoiseSchedule,
    num_steps: int = 32,
    guidance_scale: float = 7.5,
    negative_prompt_embeds: Tensor | None = None,
    solver_order: int = 2,
    progress: bool = False,
) -> Tensor:
    """DPM-Solver++ (diffusers' ``DPMSolverMultistepScheduler``): the teacher's data-generation sampler.

    The defaults are the paper's (32 steps, CFG 7.5; ADL §3.2). diffusers' scheduler is stateful, so each
    call builds its own. It starts from the noise itself (init_noise_sigma = 1), as diffusers does.
    Shapes as in ``euler_sample``; returns x0 latents (B, C, F, H, W), float32.
    """
    from diffusers import DPMSolverMultistepScheduler

    _check_inputs(noise, prompt_embeds, "dpm_solver_sample")
    scheduler = DPMSolverMultistepScheduler(
        **schedule.diffusers_config(), algorithm_type="dpmsolver++", solver_order=solver_order
    )
    scheduler.set_timesteps(num_steps, device=noise.device)
    x = noise.float() * scheduler.init_noise_sigma
    batch = noise.shape[0]
    for t_now in tqdm(scheduler.timesteps, disable=not progress, desc=f"dpm-solver++ {num_steps} steps"):
        t = t_now.expand(batch).to(torch.long)
        eps = guided_eps(
            denoiser,
            scheduler.scale_model_input(x, t_now),
            t,
            prompt_embeds,
            negative_prompt_embeds,
            guidance_scale,
        )
        x = scheduler.step(eps.float(), t_now, x).prev_sample.float()
    return x
