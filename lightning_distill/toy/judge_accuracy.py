"""How well a judge reads clips it has never seen: per-head accuracy on clips rendered from fresh seeds."""

from __future__ import annotations

import numpy as np
import torch

from lightning_distill.toy.augment import gaussian_blur
from lightning_distill.toy.judge import HEADS, ToyJudge
from lightning_distill.toy.render import render_specs, sample_spec
from lightning_distill.toy.world import VOCABULARY


def fresh_clips(
    clips: int, seed: int, frames: int, size: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``clips`` random clips over every style: video (N, 3, F, S, S) in [-1, 1] and label indices per head.

    Clip i is drawn from ``np.random.default_rng([seed, i])``; the judge trains from a different stream
    (see ``judge_training``), so any seed here is fresh to it.
    """
    specs = [sample_spec(np.random.default_rng([seed, index])) for index in range(clips)]
    video = render_specs(specs, frames, size)
    labels = {
        head: torch.tensor([VOCABULARY[head].index(getattr(spec, head)) for spec in specs]) for head in HEADS
    }
    return video, labels


def judge_accuracy(
    judge: ToyJudge, clips: int = 200, seed: int = 1, blur_sigma: float = 0.0
) -> dict[str, float]:
    """Accuracy of each head (and ``all``: every head right at once) on fresh renders, blurred if asked.

    ``blur_sigma`` > 0 applies a spatial Gaussian blur of that many pixels to every clip, a stand-in for
    the softness of generated clips.
    """
    video, labels = fresh_clips(clips, seed, judge.frames, judge.size)
    if blur_sigma > 0:
        video = gaussian_blur(video, torch.full((clips,), float(blur_sigma)))
    predicted = judge.judge(video)
    hits = {head: predicted[head] == labels[head] for head in HEADS}
    accuracy = {head: float(hit.float().mean()) for head, hit in hits.items()}
    accuracy["all"] = float(torch.stack(list(hits.values())).all(dim=0).float().mean())
    return accuracy
