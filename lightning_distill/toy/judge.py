"""The judge: a small 3D-CNN that reads a toy clip's shape, colour, motion and style.

It turns any clip a toy model generates into measurable quantities (``metrics.py``): its four heads give
prompt accuracy and style fidelity, and its 128-d penultimate embedding is the feature space of toy-FVD.
It is trained once (``python -m lightning_distill.toy train-judge``) and shipped as
``weights/judge.safetensors`` with ``weights/judge.json`` (seed, command, config, measured accuracies).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lightning_distill.atomic import atomic_output
from lightning_distill.toy.world import DEFAULT_FRAMES, DEFAULT_SIZE, VOCABULARY

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_JUDGE_PATH = WEIGHTS_DIR / "judge.safetensors"
HEADS: tuple[str, ...] = ("shape", "colour", "motion", "style")


def default_config(frames: int = DEFAULT_FRAMES, size: int = DEFAULT_SIZE) -> dict:
    """The judge's architecture and the clip geometry it is trained for (stored in ``judge.json``)."""
    return {
        "frames": frames,
        "size": size,
        "channels": [16, 32, 64, 96],
        # Full resolution in the first block: at 32 px a circle, a rotated square and a triangle differ in
        # a few edge pixels, which an early pool blurs away (an earlier judge that pooled at once read
        # shape at 72%).
        "pools": [None, [1, 2, 2], [2, 2, 2], [1, 2, 2]],
        "feature_dim": 128,
        "vocabulary": {head: list(VOCABULARY[head]) for head in HEADS},
    }


def _block(
    in_channels: int, out_channels: int, pool: tuple[int, int, int] | None, kernel=(3, 3, 3)
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv3d(
            in_channels, out_channels, kernel_size=kernel, padding=tuple(k // 2 for k in kernel), bias=False
        ),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool is not None:
        layers.append(nn.MaxPool3d(pool))
    return nn.Sequential(*layers)


class ToyJudge(nn.Module):
    """Video (B, 3, F, H, W) in [-1, 1] -> logits of each head and a (B, feature_dim) embedding.

    Only clips of the frame count and size it was trained on are accepted: its accuracies are measured
    there, and a silently resized clip would measure something else.
    """

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        self.frames, self.size = int(config["frames"]), int(config["size"])
        self.vocabulary = {head: tuple(config["vocabulary"][head]) for head in HEADS}
        channels = [3, *config["channels"]]
        pools = [tuple(p) if p else None for p in config["pools"]]
        # The full-resolution block reads edges frame by frame (a spatial kernel: a third of the cost);
        # time is pooled once, late, so the temporal kernels see the whole motion before the embedding
        # averages it away; direction lives in the sign of those temporal filters.
        self.backbone = nn.Sequential(
            *(
                _block(channels[i], channels[i + 1], pools[i], (1, 3, 3) if i == 0 else (3, 3, 3))
                for i in range(len(pools))
            ),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
        )
        self.embedding = nn.Linear(channels[-1], config["feature_dim"])
        self.heads = nn.ModuleDict(
            {head: nn.Linear(config["feature_dim"], len(self.vocabulary[head])) for head in HEADS}
        )

    def check_video(self, video: torch.Tensor) -> None:
        """Raise one clear error unless ``video`` is (B, 3, frames, size, size)."""
        expected = (3, self.frames, self.size, self.size)
        if video.ndim != 5 or tuple(video.shape[1:]) != expected:
            raise ValueError(
                f"the toy judge was trained on clips (B, 3, F={self.frames}, H=W={self.size}) and got "
                f"{tuple(video.shape)}; render or sample clips at {self.frames} frames of {self.size}x{self.size}, "
                f"or train a judge for your geometry with `python -m lightning_distill.toy train-judge "
                f"--frames F --size S --out PATH`"
            )

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"shape", "colour", "motion", "style"}: (B, classes) logits; "features": (B, feature_dim)."""
        self.check_video(video)
        features = self.embedding(self.backbone(video))
        hidden = torch.relu(features)
        outputs = {head: layer(hidden) for head, layer in self.heads.items()}
        # The pre-activation embedding has no dead (always-zero) units, which would make toy-FVD's
        # feature covariance singular.
        outputs["features"] = features
        return outputs

    @torch.no_grad()
    def judge(self, video: torch.Tensor, batch_size: int = 128) -> dict[str, torch.Tensor]:
        """Eval-mode predictions in batches: each head's class index (B,) and "features" (B, D) float32."""
        was_training = self.training
        self.eval()
        parts: dict[str, list[torch.Tensor]] = {}
        try:
            for start in range(0, video.shape[0], batch_size):
                outputs = self(video[start : start + batch_size].float())
                for name, value in outputs.items():
                    parts.setdefault(name, []).append(value if name == "features" else value.argmax(dim=1))
        finally:
            self.train(was_training)
        return {name: torch.cat(values) for name, values in parts.items()}


def judge_info_path(weights_path: str | Path) -> Path:
    """The ``.json`` that sits beside a judge's ``.safetensors``."""
    return Path(weights_path).with_suffix(".json")


def save_judge(judge: ToyJudge, path: str | Path, info: dict) -> Path:
    """Write the weights (safetensors) and ``info`` + config (json beside them), each atomically."""
    path = Path(path)
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in judge.state_dict().items()}
    with atomic_output(path) as temporary:
        save_file(state, str(temporary))
    with atomic_output(judge_info_path(path)) as temporary:
        temporary.write_text(json.dumps({**info, "config": judge.config}, indent=1) + "\n")
    return path


def load_judge(
    path: str | Path | None = None, frames: int | None = None, size: int | None = None
) -> ToyJudge:
    """Load a judge in eval mode; by default the shipped one in ``lightning_distill/toy/weights``.

    ``frames`` / ``size``, when given, are the clip geometry the caller will feed: a judge trained on a
    different geometry is refused here, with a message that says how to get a matching one.
    """
    path = Path(path) if path is not None else DEFAULT_JUDGE_PATH
    info_path = judge_info_path(path)
    if not path.is_file() or not info_path.is_file():
        raise FileNotFoundError(
            f"toy judge weights not found: need {path} and {info_path}; train them with "
            f"`python -m lightning_distill.toy train-judge --out {path}`"
        )
    config = json.loads(info_path.read_text())["config"]
    for head in HEADS:
        if tuple(config["vocabulary"][head]) != VOCABULARY[head]:
            raise ValueError(
                f"toy judge {path} was trained for {head}s {config['vocabulary'][head]}, but the toy world now "
                f"has {list(VOCABULARY[head])}; retrain it with `python -m lightning_distill.toy train-judge`"
            )
    for name, wanted in (("frames", frames), ("size", size)):
        if wanted is not None and int(wanted) != int(config[name]):
            raise ValueError(
                f"toy judge {path} was trained on clips with {name}={config[name]}, not {wanted}; use clips of "
                f"{config['frames']} frames at {config['size']}x{config['size']}, or train a judge with "
                f"`python -m lightning_distill.toy train-judge --frames F --size S --out PATH`"
            )
    judge = ToyJudge(config)
    judge.load_state_dict(load_file(str(path)))
    return judge.eval()
