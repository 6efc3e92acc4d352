"""FID for video: torch-fidelity's ``inception-v3-compat`` on every frame of every clip.

The network is torch-fidelity's own `FeatureExtractorInceptionV3` (TF1-style bilinear resize to 299,
``(x - 128) / 128``, 2048-d pool features), so the features are torch-fidelity's. Two things differ from
calling ``torch_fidelity.calculate_metrics``, on purpose:
- the weights file is read here with ``torch.load(weights_only=True)`` (torch-fidelity's constructor
  unpickles its file with ``weights_only=False``), and never downloaded;
- no feature cache is read or written (torch-fidelity's cache is loaded with plain ``torch.load``).
The distance is `eval.frechet_distance` with the unbiased covariance (n - 1), as torch-fidelity takes it.
Float frames are rounded to uint8 first, as saving them to image files would.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from eval.frechet import frechet_distance
from eval.videos import Videos, iter_batches, to_uint8
from eval.weights import MetricResult, resolve_weights

FEATURE_LAYER = "2048"


class _InceptionV3Compat(FeatureExtractorInceptionV3):
    """torch-fidelity's inception-v3-compat, built without its own weight loading.

    Its constructor insists on reading a weights file and loading it; we hand it an empty placeholder
    (a pickle we wrote, so unpickling it is safe), skip that one load, and load the real weights after
    construction with ``strict=True``.
    """

    def __init__(self):
        placeholder = io.BytesIO()
        torch.save({}, placeholder)
        placeholder.seek(0)
        super().__init__("inception-v3-compat", [FEATURE_LAYER], feature_extractor_weights_path=placeholder)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if not state_dict:  # the constructor's placeholder: keep the initialisation
            return torch.nn.modules.module._IncompatibleKeys([], [])
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


@dataclass
class InceptionExtractor:
    """2048-d Inception features of uint8 frames (B, 3, H, W).

    `weights` is the file it was loaded from; None marks a randomly initialised network (tests only).
    """

    network: FeatureExtractorInceptionV3
    weights: str | None

    @torch.no_grad()
    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        self.network.eval()
        (features,) = self.network(frames)
        return features


def untrained_inception_v3() -> InceptionExtractor:
    """The inception-v3-compat architecture with PyTorch's default initialisation: for tests, never a metric."""
    return InceptionExtractor(_InceptionV3Compat(), weights=None)


def load_inception(
    path: str | os.PathLike | None = None, weights_dir=None, device="cpu"
) -> InceptionExtractor:
    """torch-fidelity's inception-v3-compat from its weights file (config key ``eval.weights.inception``).

    Missing file: `eval.weights.MissingWeightsError`.
    """
    file = resolve_weights("inception", path, weights_dir)
    state = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not state:
        raise ValueError(f"Inception weights file {file} holds no state dict")
    network = _InceptionV3Compat()
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"Inception weights file {file} is not torch-fidelity's inception-v3-compat: {error}"
        ) from error
    return InceptionExtractor(network.to(device), weights=str(file))


def inception_features(
    videos: Videos, extractor: InceptionExtractor, batch_size: int = 4, device="cpu"
) -> torch.Tensor:
    """Inception features (N * F, 2048), float64 on the CPU, of every frame of every clip.

    `batch_size` counts clips; each batch runs its clips' frames together.
    """
    extractor.network.to(device)
    features = []
    for batch in iter_batches(videos, batch_size):
        frames = to_uint8(batch.to(device)).transpose(1, 2).flatten(0, 1)  # (N * F, 3, H, W)
        features.append(extractor.embed(frames).double().cpu())
    if not features:
        raise ValueError("FID got an empty video set")
    return torch.cat(features)


def fid(
    videos_a: Videos, videos_b: Videos, extractor: InceptionExtractor, batch_size: int = 4, device="cpu"
) -> MetricResult:
    """FID between the frames of two video sets (each a (N, 3, F, H, W) tensor or an iterable of batches)."""
    features_a = inception_features(videos_a, extractor, batch_size, device)
    features_b = inception_features(videos_b, extractor, batch_size, device)
    return MetricResult(
        metric="FID",
        value=frechet_distance(features_a, features_b, "unbiased"),
        convention=(
            "torch-fidelity inception-v3-compat, TF1 bilinear resize to 299, 2048-d pool features of uint8 "
            "frames; unbiased covariance, scipy sqrtm"
        ),
        frames="every frame of every clip, each frame one sample",
        weights=extractor.weights,
        num_samples=(len(features_a), len(features_b)),
    )
