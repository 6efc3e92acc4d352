"""Frechet Video Distance: I3D embeddings of two sets of clips, and the Frechet distance between them.

Two detectors, both 400-d Kinetics logits before the softmax:
- StyleGAN-V's TorchScript port of the TF-Hub I3D (``i3d_torchscript.pt``), called as the references call
  it on already preprocessed clips: ``detector(x, rescale=False, resize=False, return_features=True)``;
- this project's `eval.i3d.I3D` with pytorch-i3d weights (``i3d_pretrained_400.pt``, ``rgb_imagenet.pt``),
  whose logits (B, 400, T') are averaged over T'.

Two preprocessing presets, each as its reference code does it, on the first `num_frames` frames of every
clip (16 by default; FVD needs at least 9):
- ``styleganv`` (default; common_metrics_on_video_quality's StyleGAN-V path): shorter side to 224 by
  bilinear interpolation (align_corners=False, no antialias), centre crop 224 x 224, pixels in [-1, 1];
- ``videogpt``: the same resize and crop, pixels in [-0.5, 0.5], VideoGPT's pitfall (it subtracts 0.5
  and never multiplies by 2); only for comparing with numbers published from that code.

The distance is `eval.frechet_distance` (float64, scipy sqrtm) with the unbiased covariance by default,
as common_metrics_on_video_quality and the TF original take it; pass ``covariance="biased"`` to match
StyleGAN-V's ``fvd2048_16f``. The distance is biased by N: compare numbers at equal clip counts.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from eval.frechet import Covariance, frechet_distance
from eval.i3d import FRAME_SIZE, I3D, MIN_FRAMES
from eval.videos import Videos, iter_batches, to_unit_range
from eval.weights import MetricResult, resolve_weights

# Output pixel range of each preset: unit-range pixels v in [0, 1] map to scale * (v - 0.5).
PRESET_SCALE = {"styleganv": 2.0, "videogpt": 1.0}
PRESET_RANGE = {"styleganv": "[-1, 1]", "videogpt": "[-0.5, 0.5] (VideoGPT's pitfall)"}


@dataclass
class I3DDetector:
    """An I3D that maps preprocessed clips (B, 3, T, 224, 224) to 400-d embeddings (B, 400).

    `weights` is the file it was loaded from; None marks a randomly initialised network (tests only), and
    every FVD it computes says it is not a metric.
    """

    network: torch.nn.Module
    weights: str | None

    @property
    def torchscript(self) -> bool:
        return isinstance(self.network, torch.jit.ScriptModule)

    @property
    def name(self) -> str:
        if self.torchscript:
            return "StyleGAN-V TorchScript I3D"
        return "pytorch-i3d InceptionI3d"

    @torch.no_grad()
    def embed(self, clips: torch.Tensor) -> torch.Tensor:
        self.network.eval()
        if self.torchscript:
            # JIT fusion on GPU is a known source of FVD discrepancies (FastVideo turns the fuser off for
            # this detector); unfused, the detector computes the same on every device.
            with torch.jit.fuser("none"):
                return self.network(clips, rescale=False, resize=False, return_features=True)
        return self.network(clips).mean(dim=2)


def _is_torchscript_archive(path: Path) -> bool:
    # torch.jit.save writes a zip with the model's code and constants; torch.save's zip has neither.
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


def load_i3d(path: str | os.PathLike | None = None, weights_dir=None, device="cpu") -> I3DDetector:
    """The FVD detector from a weights file (config key ``eval.weights.i3d``).

    A TorchScript archive (``i3d_torchscript.pt``) loads with ``torch.jit.load``; a pytorch-i3d state
    dict (``i3d_pretrained_400.pt``, ``rgb_imagenet.pt``) loads with ``torch.load(weights_only=True)``
    into `I3D` with ``strict=True``. Missing file: `eval.weights.MissingWeightsError`.
    """
    file = resolve_weights("i3d", path, weights_dir)
    if _is_torchscript_archive(file):
        network = torch.jit.load(str(file), map_location="cpu")
    else:
        state = torch.load(file, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"I3D weights file {file} holds a {type(state).__name__}, not a state dict")
        network = I3D()
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise ValueError(
                f"I3D weights file {file} is not a pytorch-i3d InceptionI3d (Kinetics-400) state dict: {error}"
            ) from error
    return I3DDetector(network.eval().to(device), weights=str(file))


def frame_rule(num_frames: int | None) -> str:
    """The frame selection in words, as results state it."""
    return "all frames of each clip" if num_frames is None else f"first {num_frames} frames of each clip"


def preprocess_clips(
    videos: torch.Tensor, preset: str = "styleganv", num_frames: int | None = 16
) -> torch.Tensor:
    """(N, 3, F, H, W) uint8 or [-1, 1] float -> (N, 3, T, 224, 224) float32 in the preset's range.

    T is `num_frames` (the first frames of each clip) or F when None. The shorter side goes to 224 and the
    longer to ceil(longer * 224 / shorter), then the centre 224 x 224 is cut, as the references do it.
    """
    if preset not in PRESET_SCALE:
        raise ValueError(f"unknown FVD preset {preset!r}; choose one of {', '.join(PRESET_SCALE)}")
    frames = videos.shape[2]
    if num_frames is not None:
        if frames < num_frames:
            raise ValueError(f"FVD takes the first {num_frames} frames, but the clips have only {frames}")
        videos = videos[:, :, :num_frames]
    if videos.shape[2] < MIN_FRAMES:
        raise ValueError(
            f"FVD needs clips of at least {MIN_FRAMES} frames (I3D's pooling), got {videos.shape[2]}"
        )
    pixels = to_unit_range(videos)
    n, c, t, h, w = pixels.shape
    scale = FRAME_SIZE / min(h, w)
    size = (FRAME_SIZE, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), FRAME_SIZE)
    pixels = F.interpolate(pixels.reshape(n * c, t, h, w), size=size, mode="bilinear", align_corners=False)
    top, left = (size[0] - FRAME_SIZE) // 2, (size[1] - FRAME_SIZE) // 2
    pixels = pixels[:, :, top : top + FRAME_SIZE, left : left + FRAME_SIZE]
    pixels = pixels.reshape(n, c, t, FRAME_SIZE, FRAME_SIZE)
    return (PRESET_SCALE[preset] * (pixels - 0.5)).contiguous()


def i3d_features(
    videos: Videos,
    detector: I3DDetector,
    preset: str = "styleganv",
    num_frames: int | None = 16,
    batch_size: int = 8,
    device="cpu",
) -> torch.Tensor:
    """I3D embeddings (N, 400), float64 on the CPU, of a video set (see `eval.videos`)."""
    detector.network.to(device)
    features = []
    for batch in iter_batches(videos, batch_size):
        clips = preprocess_clips(batch.to(device), preset, num_frames)
        features.append(detector.embed(clips).double().cpu())
    if not features:
        raise ValueError("FVD got an empty video set")
    return torch.cat(features)


def fvd(
    videos_a: Videos,
    videos_b: Videos,
    detector: I3DDetector,
    preset: str = "styleganv",
    num_frames: int | None = 16,
    covariance: Covariance = "unbiased",
    batch_size: int = 8,
    device="cpu",
) -> MetricResult:
    """FVD between two video sets (each a (N, 3, F, H, W) tensor or an iterable of such batches)."""
    features_a = i3d_features(videos_a, detector, preset, num_frames, batch_size, device)
    features_b = i3d_features(videos_b, detector, preset, num_frames, batch_size, device)
    return MetricResult(
        metric="FVD",
        value=frechet_distance(features_a, features_b, covariance),
        convention=(
            f"{preset} preset: shorter side to {FRAME_SIZE} bilinear, centre crop, pixels in "
            f"{PRESET_RANGE[preset]}; {detector.name}, 400-d logits averaged over time; "
            f"{covariance} covariance, scipy sqrtm"
        ),
        frames=frame_rule(num_frames),
        weights=detector.weights,
        num_samples=(len(features_a), len(features_b)),
    )
