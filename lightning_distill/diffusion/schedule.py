"""The noise schedule: the one place that holds the diffusion maths every other module uses.

AnimateDiff, AnimateLCM and AnimateDiff-Lightning all use betas from 0.00085 to 0.012 spaced linearly in
beta (diffusers' ``beta_schedule="linear"``; SD1.5 itself was trained with ``scaled_linear``) over 1000
training timesteps, with epsilon prediction at every step count (METHOD.md).

Latent spaces. Every tensor this module takes or returns is in **DDPM space**, the space the UNet reads:

    x_t = sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * eps.

diffusers' ``EulerDiscreteScheduler`` keeps its sample in **sigma space** instead,

    x_sigma = x_t / sqrt(alpha_bar_t) = x0 + sigma_t * eps,   sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t),

and its ``scale_model_input`` divides by sqrt(sigma_t^2 + 1) = 1 / sqrt(alpha_bar_t), which is the way
back to DDPM space. One Euler step in sigma space, x_sigma' = x_sigma + (sigma' - sigma) * eps, maps to
sqrt(alpha_bar') * x0_hat + sqrt(1 - alpha_bar') * eps in DDPM space: the DDIM (eta = 0) update. So a
**move** written once in DDPM space is both the trailing Euler step and the DDIM step (tests prove it
against both diffusers schedulers), and it is a pure function, unlike the schedulers' stateful ``step``.

Timesteps are integers in [0, T-1] (T = ``num_train_timesteps``); -1 stands for "clean" (alpha_bar = 1,
diffusers' ``set_alpha_to_one=True`` and Euler's final sigma 0). Tensors of timesteps hold one entry per
sample, shape (B,); video latents are (B, C, F, H, W) and every frame of a sample shares its timestep.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

CLEAN = -1
"""The timestep that stands for clean data (alpha_bar = 1): the target of a sampler's last move."""

MOVE_ERROR_SPACES = ("destination", "eps", "x0", "v")
"""The spaces a gap between two moves' destinations can be measured in (`NoiseSchedule.move_error_scale`)."""


class NoiseSchedule:
    """Linear-beta DDPM schedule with epsilon prediction and the zero-terminal-SNR input rule.

    Args:
        num_train_timesteps: T, the number of training timesteps (1000 for SD1.5 and AnimateDiff).
        beta_start, beta_end: the first and last beta, spaced linearly in between.
        pure_noise_at_terminal: SDXL-Lightning §3.5. The linear schedule never reaches zero SNR
            (alpha_bar_{T-1} = 0.001579), yet sampling starts from pure noise at t = T-1. With the rule on,
            ``add_noise`` returns the noise itself at t = T-1 and ``terminal_latents`` starts sampling from
            it, so the student sees at t = T-1 in training what it sees at inference. With it off, both
            follow the plain formula, which is what diffusers' Euler and DDIM pipelines start from
            (sqrt(1 - alpha_bar_{T-1}) * noise, a factor 0.99921 away).
    """

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        pure_noise_at_terminal: bool = True,
    ) -> None:
        if num_train_timesteps < 2:
            raise ValueError(f"NoiseSchedule: num_train_timesteps must be >= 2, got {num_train_timesteps}")
        if not 0.0 < beta_start < beta_end < 1.0:
            raise ValueError(
                f"NoiseSchedule: need 0 < beta_start < beta_end < 1, got beta_start={beta_start}, "
                f"beta_end={beta_end}"
            )
        self.num_train_timesteps = int(num_train_timesteps)
        self.beta_start = float(beta_start)
        self.beta_end = float(beta_end)
        self.pure_noise_at_terminal = bool(pure_noise_at_terminal)
        # float32, as diffusers builds it, so that moves agree with its schedulers to the last bit we can.
        betas = torch.linspace(self.beta_start, self.beta_end, self.num_train_timesteps, dtype=torch.float32)
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        # Index t + 1 into this table, so that t = CLEAN (-1) reads alpha_bar = 1 without a branch. One copy
        # per device, so a training step does not copy the table to the accelerator on every call.
        self._alpha_bar_tables = {torch.device("cpu"): torch.cat([torch.ones(1), self.alphas_cumprod])}

    @property
    def terminal_timestep(self) -> int:
        """T - 1, the noisiest timestep (999), where every trailing schedule starts."""
        return self.num_train_timesteps - 1

    def __repr__(self) -> str:
        return (
            f"NoiseSchedule(num_train_timesteps={self.num_train_timesteps}, beta_start={self.beta_start}, "
            f"beta_end={self.beta_end}, pure_noise_at_terminal={self.pure_noise_at_terminal})"
        )

    def diffusers_config(self) -> dict:
        """Keyword arguments that give any diffusers scheduler this schedule (linear betas, epsilon)."""
        return {
            "num_train_timesteps": self.num_train_timesteps,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "beta_schedule": "linear",
            "prediction_type": "epsilon",
        }

    # ---- the table -------------------------------------------------------------------------------------

    def alpha_bar(self, t: Tensor | int, like: Tensor | None = None) -> Tensor:
        """alpha_bar at timesteps t (ints in [-1, T-1]; -1 gives 1.0), float32.

        With ``like`` (B, ...), the result has shape (B, 1, ..., 1) on like's device, ready to broadcast;
        without it, the shape of t.
        """
        t = torch.as_tensor(t)
        device = like.device if like is not None else t.device
        table = self._alpha_bar_tables.get(device)
        if table is None:
            table = self._alpha_bar_tables[device] = self._alpha_bar_tables[torch.device("cpu")].to(device)
        values = table[t.to(device=device, dtype=torch.long) + 1]
        if like is not None:
            values = values.reshape(-1, *([1] * (like.ndim - 1)))
        return values

    def sigma(self, t: Tensor | int, like: Tensor | None = None) -> Tensor:
        """Euler's sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t), float32 (0 at t = -1); shaped as
        `alpha_bar`'s result for the same `like`."""
        alpha_bar = self.alpha_bar(t, like=like)
        return ((1.0 - alpha_bar) / alpha_bar).sqrt()

    def trailing_timesteps(self, num_steps: int) -> Tensor:
        """The n timesteps of diffusers' ``timestep_spacing="trailing"``, noisiest first, int64 (n,).

        n = 4 gives [999, 749, 499, 249]; the sampler's last move goes from the last of them to CLEAN.
        Computed with the same numpy expression as diffusers, so that n = 3 rounds the same way.
        """
        if not 1 <= int(num_steps) <= self.num_train_timesteps:
            raise ValueError(
                f"trailing_timesteps: num_steps must be in [1, {self.num_train_timesteps}], got {num_steps}"
            )
        step_ratio = self.num_train_timesteps / int(num_steps)
        timesteps = np.round(np.arange(self.num_train_timesteps, 0, -step_ratio)).astype(np.int64) - 1
        return torch.from_numpy(timesteps)

    def next_timestep(self, t: Tensor, stride: int) -> Tensor:
        """t - stride, floored at CLEAN: where a move of the given stride lands (the teacher's n moves of
        stride s from t end at t - n*s, where the student's one move of stride n*s lands)."""
        return torch.clamp(t - int(stride), min=CLEAN)

    # ---- noising and the prediction conversions ---------------------------------------------------------

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """Forward process q(x_t | x0) for (B, ...) tensors and t (B,) in [0, T-1].

        Pure noise at t = T-1 when ``pure_noise_at_terminal`` (SDXL-Lightning §3.5). Returns x0's dtype.
        """
        alpha_bar = self.alpha_bar(t, like=x0)
        x_t = alpha_bar.sqrt() * x0.float() + (1.0 - alpha_bar).sqrt() * noise.float()
        if self.pure_noise_at_terminal:
            at_terminal = (t.to(x0.device) == self.terminal_timestep).reshape(alpha_bar.shape)
            x_t = torch.where(at_terminal, noise.float(), x_t)
        return x_t.to(x0.dtype)

    def terminal_latents(self, noise: Tensor) -> Tensor:
        """x_{T-1} to start sampling from, given unit Gaussian noise: add_noise of any x0 at t = T-1 without
        its (vanishing) signal, so pure noise under the zero-terminal-SNR rule."""
        if self.pure_noise_at_terminal:
            return noise.clone()
        alpha_bar = self.alpha_bar(self.terminal_timestep).to(noise.device)
        return ((1.0 - alpha_bar).sqrt() * noise.float()).to(noise.dtype)

    def x0_from_eps(self, x_t: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar); t (B,) in [-1, T-1]; x_t's dtype."""
        alpha_bar = self.alpha_bar(t, like=x_t)
        x0 = (x_t.float() - (1.0 - alpha_bar).sqrt() * eps.float()) / alpha_bar.sqrt()
        return x0.to(x_t.dtype)

    def eps_from_x0(self, x_t: Tensor, x0: Tensor, t: Tensor) -> Tensor:
        """eps = (x_t - sqrt(alpha_bar) x0) / sqrt(1 - alpha_bar); t (B,) in [0, T-1]; x_t's dtype."""
        alpha_bar = self.alpha_bar(t, like=x_t)
        eps = (x_t.float() - alpha_bar.sqrt() * x0.float()) / (1.0 - alpha_bar).sqrt()
        return eps.to(x_t.dtype)

    def to_sigma_space(self, x_t: Tensor, t: Tensor) -> Tensor:
        """DDPM-space x_t -> Euler's sigma-space sample x_t / sqrt(alpha_bar_t)."""
        return (x_t.float() / self.alpha_bar(t, like=x_t).sqrt()).to(x_t.dtype)

    def from_sigma_space(self, x_sigma: Tensor, t: Tensor) -> Tensor:
        """Euler's sigma-space sample -> DDPM-space x_t = x_sigma * sqrt(alpha_bar_t) (what the UNet reads)."""
        return (x_sigma.float() * self.alpha_bar(t, like=x_sigma).sqrt()).to(x_sigma.dtype)

    # ---- the move --------------------------------------------------------------------------------------

    def move(self, x_t: Tensor, eps: Tensor, t: Tensor, t_next: Tensor) -> Tensor:
        """One deterministic Euler move (= DDIM, eta 0) from x_t at t to x_{t_next}, given the model's eps.

        x_t, eps: (B, C, F, H, W) or any (B, ...), DDPM space. t, t_next: (B,) ints, t in [0, T-1],
        t_next in [-1, t) (-1 lands on the predicted x0). Each sample moves with its own pair. The maths
        runs in float32 (as diffusers' Euler step upcasts); the result has x_t's dtype. Differentiable, so a
        student's move carries gradients back to its eps.
        """
        x0 = self.x0_from_eps(x_t.float(), eps.float(), t)
        alpha_bar_next = self.alpha_bar(t_next, like=x_t)
        x_next = alpha_bar_next.sqrt() * x0 + (1.0 - alpha_bar_next).sqrt() * eps.float()
        return x_next.to(x_t.dtype)

    def move_error_scale(self, t: Tensor, t_next: Tensor, space: str, like: Tensor) -> Tensor:
        """Per-sample factor k, shaped to broadcast against `like`, such that k * |x'_1 - x'_2| is how far
        apart two moves from the same x_t at t to t_next (< t), landing at x'_1 and x'_2, are in `space`.
        With a = alpha_bar_t, a' = alpha_bar_{t_next} and sigma as Euler's:

        - "destination": 1, the landing points themselves (DDPM space);
        - "eps": the eps each landing point implies. A move is x' = sqrt(a'/a) x_t + c eps with
          c = sqrt(a') (sigma' - sigma) (< 0: sigma falls), so a destination gap is |c| times an eps gap;
        - "x0": the x0 each implies, sigma times the eps gap: the clip the move aims at;
        - "v": the v-prediction each implies, 1 / sqrt(a) times the eps gap.

        The n Euler moves of a teacher imply an eps, x0 and v for the student's single move the same way.
        """
        if space not in MOVE_ERROR_SPACES:
            raise ValueError(f"move_error_scale: space must be one of {MOVE_ERROR_SPACES}, got {space!r}")
        alpha_bar = self.alpha_bar(t, like=like)
        if space == "destination":
            return torch.ones_like(alpha_bar)
        sigma, sigma_next = self.sigma(t, like=like), self.sigma(t_next, like=like)
        eps_per_destination = 1.0 / (self.alpha_bar(t_next, like=like).sqrt() * (sigma - sigma_next))
        if space == "eps":
            return eps_per_destination
        if space == "x0":
            return eps_per_destination * sigma
        return eps_per_destination / alpha_bar.sqrt()
