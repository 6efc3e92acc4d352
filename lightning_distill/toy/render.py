"""The toy world's renderer: spec -> uint8 clip, captions -> a float video batch.

Deterministic: a spec renders to the same bytes every time (its background variation is seeded by
``spec.background_seed``), and ``render_batch`` draws clip i's continuous parameters from
``np.random.default_rng([seed, i])``, so the same (captions, styles, seed) gives the same tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lightning_distill.toy.geometry import geometry_of
from lightning_distill.toy.spec import (
    ClipSpec,
    caption_of,
    labels_of,
    parse_caption,
    sample_spec,
    spec_from_caption,
)
from lightning_distill.toy.styles import PAINTERS, add_trail
from lightning_distill.toy.world import DEFAULT_FRAMES, DEFAULT_SIZE

__all__ = [
    "ClipSpec",
    "caption_of",
    "clips_to_video",
    "labels_of",
    "parse_caption",
    "render_batch",
    "render_clip",
    "render_specs",
    "sample_spec",
    "spec_from_caption",
]


def render_clip(spec: ClipSpec, frames: int = DEFAULT_FRAMES, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Render one clip: uint8 (F, H, W, 3), H = W = ``size``, the motion spanning all ``frames``."""
    geometry = geometry_of(spec, frames, size)
    painted = PAINTERS[spec.style](geometry, np.random.default_rng(spec.background_seed))
    painted = add_trail(np.broadcast_to(painted, (frames, size, size, 3)), geometry)
    return np.round(np.clip(painted, 0.0, 1.0) * 255.0).astype(np.uint8)


def clips_to_video(clips: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 clips (N, F, H, W, 3) -> float32 video (N, 3, F, H, W) in [-1, 1], the project's layout."""
    array = torch.from_numpy(
        np.ascontiguousarray(np.stack(list(clips)) if not isinstance(clips, np.ndarray) else clips)
    )
    return array.permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


def render_specs(
    specs: Sequence[ClipSpec], frames: int = DEFAULT_FRAMES, size: int = DEFAULT_SIZE
) -> torch.Tensor:
    """Render many specs into one float32 video batch (N, 3, F, H, W) in [-1, 1]."""
    return clips_to_video([render_clip(spec, frames, size) for spec in specs])


def render_batch(
    captions: Sequence[str],
    styles: str | Sequence[str],
    seed: int,
    frames: int = DEFAULT_FRAMES,
    size: int = DEFAULT_SIZE,
) -> torch.Tensor:
    """Render one clip per caption in its style (one style for all, or one per caption).

    Returns float32 (N, 3, F, H, W) in [-1, 1]. Clip i's size, path, rotation and background come from
    ``np.random.default_rng([seed, i])``: independent sets of real clips for the same prompts come from
    different seeds.
    """
    captions = list(captions)
    styles = [styles] * len(captions) if isinstance(styles, str) else list(styles)
    if len(styles) != len(captions):
        raise ValueError(
            f"render_batch: {len(captions)} captions but {len(styles)} styles; give one style or one per caption"
        )
    specs = [
        spec_from_caption(caption, style, np.random.default_rng([seed, index]))
        for index, (caption, style) in enumerate(zip(captions, styles))
    ]
    return render_specs(specs, frames, size)
