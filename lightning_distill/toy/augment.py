"""Degradations the judge trains on, so that it judges content and style, not sharpness.

Generated clips come out of a tiny VAE after few sampling steps, and shards hold yuv420p H.264: both
blur edges, halve colour resolution, add noise and shift colours a little. Each degradation here is
drawn per clip and is mild enough that a person still reads the same shape, colour, motion and style.
All functions take and return float video (B, 3, F, H, W) in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# BT.601 RGB -> luma, the weights H.264's yuv420p conversion uses.
_LUMA = torch.tensor([0.299, 0.587, 0.114])


def gaussian_blur(video: torch.Tensor, sigma: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """Blur each clip's frames spatially with its own Gaussian ``sigma`` (B,) in pixels (0: unchanged)."""
    offsets = torch.arange(-radius, radius + 1, dtype=video.dtype, device=video.device)
    safe = sigma.to(video).clamp_min(1e-3)[:, None]
    kernel = torch.exp(-0.5 * (offsets[None] / safe) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # (B, K)
    padded = F.pad(video, (radius, radius, radius, radius, 0, 0), mode="replicate")
    rows = torch.einsum("bcfhwk,bk->bcfhw", padded.unfold(-1, 2 * radius + 1, 1), kernel)
    return torch.einsum("bcfhwk,bk->bcfhw", rows.unfold(-2, 2 * radius + 1, 1), kernel)


def subsample_chroma(video: torch.Tensor) -> torch.Tensor:
    """Keep luma at full resolution and average colour-difference over 2x2 pixels, as yuv420p does."""
    luma = torch.einsum("bcfhw,c->bfhw", video, _LUMA.to(video))[:, None]
    chroma = video - luma
    b, c, f, h, w = chroma.shape
    flat = chroma.transpose(1, 2).reshape(b * f, c, h, w)
    flat = F.interpolate(
        F.avg_pool2d(flat, 2, ceil_mode=True), size=(h, w), mode="bilinear", align_corners=False
    )
    return luma + flat.reshape(b, f, c, h, w).transpose(1, 2)


def jitter_colour(video: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-clip brightness (+-0.08), contrast (x0.85-1.15) and per-channel gain (x0.95-1.05) changes."""
    b = video.shape[0]

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=generator) * (high - low) + low).to(video)

    brightness = uniform(-0.08, 0.08, b, 1, 1, 1, 1)
    contrast = uniform(0.85, 1.15, b, 1, 1, 1, 1)
    gain = uniform(0.95, 1.05, b, 3, 1, 1, 1)
    mean = video.mean(dim=(1, 2, 3, 4), keepdim=True)
    return ((video - mean) * contrast + mean) * gain + brightness


def degrade(
    video: torch.Tensor, generator: torch.Generator, max_blur: float = 1.5, max_noise: float = 0.08
) -> torch.Tensor:
    """A random mix of blur, chroma subsampling, noise and colour jitter per clip, clamped to [-1, 1].

    Each clip is blurred with probability 0.7 (sigma uniform in [0.3, ``max_blur``] px), chroma-
    subsampled with probability 0.5, given Gaussian noise with probability 0.5 (std uniform up to
    ``max_noise``, in [-1, 1] units) and colour-jittered always.
    """
    b = video.shape[0]

    def chosen(probability: float) -> torch.Tensor:
        return (torch.rand(b, generator=generator) < probability).to(video.device)[:, None, None, None, None]

    sigma = torch.rand(b, generator=generator) * (max_blur - 0.3) + 0.3
    blurred = gaussian_blur(video, sigma.to(video))
    out = torch.where(chosen(0.7), blurred, video)
    out = torch.where(chosen(0.5), subsample_chroma(out), out)
    noise_std = (torch.rand(b, generator=generator) * max_noise).to(video)[:, None, None, None, None]
    noise = torch.randn(out.shape, generator=generator).to(video)
    out = out + noise * noise_std * chosen(0.5)
    return jitter_colour(out, generator).clamp(-1.0, 1.0)
