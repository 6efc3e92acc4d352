"""CLIP score (CLIPSIM) for video: 100 x cosine between a clip's caption and each of its frames, averaged
over the frames of a clip, then over clips.

open_clip, ``ViT-H-14`` (LAION-2B) by default as AnimateLCM reports it, or any open_clip model name with
its weights file (OpenAI weights need the ``-quickgelu`` name). Frames go through the model's own eval
transform (shorter side to 224 bicubic on a PIL image, centre crop, OpenAI mean/std) after rounding to
uint8, as scoring saved frames would. The tokenizer is open_clip's, offline.

Clamp convention: none. torchmetrics' ``CLIPScore`` returns max(mean, 0), clamping the mean (not each
pair); that only differs from the number here when the mean is negative, which no trained CLIP gives
for matching captions: a negative mean means a broken pipeline, and a clamp would hide it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

from eval.videos import Videos, iter_batches, to_uint8
from eval.weights import REGISTRY, MetricResult, MissingWeightsError, resolve_weights

DEFAULT_MODEL = "ViT-H-14"


@dataclass
class ClipScorer:
    """An open_clip model with its eval transform and tokenizer.

    `weights` is the file it was loaded from; None marks a randomly initialised model (tests only).
    """

    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable[[list[str]], torch.Tensor]
    model_name: str
    weights: str | None

    @torch.no_grad()
    def text_features(self, captions: Sequence[str], device) -> torch.Tensor:
        """L2-normalised caption embeddings (len(captions), D)."""
        self.model.eval()
        tokens = self.tokenizer(list(captions)).to(device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    @torch.no_grad()
    def image_features(self, frames: torch.Tensor, device) -> torch.Tensor:
        """L2-normalised embeddings (B, D) of uint8 frames (B, 3, H, W)."""
        self.model.eval()
        pixels = frames.permute(0, 2, 3, 1).cpu().numpy()
        images = torch.stack([self.preprocess(Image.fromarray(np.ascontiguousarray(p))) for p in pixels])
        return F.normalize(self.model.encode_image(images.to(device)).float(), dim=-1)


def load_clip(
    model_name: str = DEFAULT_MODEL, path: str | os.PathLike | None = None, weights_dir=None, device="cpu"
) -> ClipScorer:
    """An open_clip model from a local weights file (``.bin`` or ``.safetensors``; config key
    ``eval.weights.clip``). Only ViT-H-14 has a default file name in the weights directory; other models
    need `path`. Missing file: `eval.weights.MissingWeightsError`.
    """
    if path is None and model_name != DEFAULT_MODEL:
        key = REGISTRY["clip"].config_key
        raise MissingWeightsError(
            f"CLIP model {model_name} has no default weights file: pass the path of its open_clip weights "
            f"(.bin or .safetensors) with {key}=/path/to/weights"
        )
    file = resolve_weights("clip", path, weights_dir)
    try:
        # A file path (never a tag) so open_clip cannot reach for the network; weights_only for safety.
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=str(file), device=device, weights_only=True
        )
    except RuntimeError as error:
        raise ValueError(
            f"CLIP weights file {file} does not load into open_clip model {model_name} (OpenAI weights need "
            f"the '-quickgelu' model name): {error}"
        ) from error
    return ClipScorer(model.eval(), preprocess, open_clip.get_tokenizer(model_name), model_name, str(file))


def clip_frame_scores(
    videos: Videos, captions: Sequence[str], scorer: ClipScorer, batch_size: int = 4, device="cpu"
) -> list[torch.Tensor]:
    """100 x cosine(caption, frame) for each clip: one (F,) tensor per clip, in clip order.

    `captions` holds one caption per clip; `batch_size` counts clips.
    """
    captions = list(captions)
    scorer.model.to(device)
    scores: list[torch.Tensor] = []
    for batch in iter_batches(videos, batch_size):
        n, _, frames = batch.shape[:3]
        if len(scores) + n > len(captions):
            raise ValueError(f"CLIP score got more clips than captions ({len(captions)})")
        text = scorer.text_features(captions[len(scores) : len(scores) + n], device)  # (n, D)
        images = scorer.image_features(to_uint8(batch).transpose(1, 2).flatten(0, 1), device)  # (n * F, D)
        cosine = (images.view(n, frames, -1) * text[:, None, :]).sum(-1)
        scores.extend((100.0 * cosine).double().cpu())
    if not scores:
        raise ValueError("CLIP score got an empty video set")
    if len(scores) != len(captions):
        raise ValueError(f"CLIP score got {len(scores)} clips but {len(captions)} captions")
    return scores


def clip_score(
    videos: Videos, captions: Sequence[str], scorer: ClipScorer, batch_size: int = 4, device="cpu"
) -> MetricResult:
    """Mean over clips of the mean over frames of 100 x cosine(caption, frame); per-clip means kept."""
    per_clip = [float(s.mean()) for s in clip_frame_scores(videos, captions, scorer, batch_size, device)]
    return MetricResult(
        metric="CLIP score",
        value=float(np.mean(per_clip)),
        convention=(
            f"open_clip {scorer.model_name}, 100 x cosine of L2-normalised caption and frame features, "
            "mean over frames then clips, no clamp (torchmetrics clamps the mean at 0)"
        ),
        frames="every frame of every clip",
        weights=scorer.weights,
        num_samples=(len(per_clip),),
        per_sample=tuple(per_clip),
    )
