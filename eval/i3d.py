"""The Inception-v1 I3D video classifier (Carreira & Zisserman, arXiv 1705.07750) that FVD embeds with.

Written for this project, with the module layout of pytorch-i3d's ``InceptionI3d`` so that its state
dict keys are the same endpoint names (``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_4b.b1b.bn.running_mean``,
``logits.conv3d.bias``, ...) and the published ``i3d_pretrained_400.pt`` / ``rgb_imagenet.pt`` load with
``strict=True``. Like the TensorFlow original it pads "SAME" at run time (the padding depends on the input
size), and its BatchNorm3d uses eps 1e-3, momentum 0.01.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Frames and pixels the head needs: the temporal stride is 8 before the [2, 7, 7] average pool, and the
# spatial stride is 32 before it, so 9 frames and 224 x 224 give exactly one output position in space.
MIN_FRAMES = 9
FRAME_SIZE = 224

# Inception block specs, [b0, b1a, b1b, b2a, b2b, b3b] output channels, in DeepMind's endpoint order.
MIXED_CHANNELS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


# DeepMind's endpoint names, in forward order; the module attributes carry these names so the state dict
# keys match pytorch-i3d's.
ENDPOINTS = (
    "Conv3d_1a_7x7",
    "MaxPool3d_2a_3x3",
    "Conv3d_2b_1x1",
    "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (front, back) of one axis: the output has ceil(size / stride) positions.

    The odd pixel goes to the back, as TensorFlow puts it.
    """
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    t, h, w = x.shape[2:]
    pt, ph, pw = (same_padding(s, k, st) for s, k, st in zip((t, h, w), kernel, stride))
    # F.pad lists the last axis first.
    return F.pad(x, (*pw, *ph, *pt))


class Unit3D(nn.Module):
    """Conv3d (no bias) + BatchNorm3d + ReLU, or, for the classifier, a biased Conv3d alone."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        classifier: bool = False,
    ):
        super().__init__()
        self.kernel, self.stride, self.classifier = kernel, stride, classifier
        # Padding is zero here and computed per input in forward, as TF "SAME" needs.
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=0, bias=classifier)
        if not classifier:
            self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.classifier:
            return x
        return F.relu(self.bn(x))


class MaxPool3dSame(nn.Module):
    """Max pooling with TF "SAME" output size. It pads with zeros, not -inf: every input follows a ReLU,
    so a zero never wins over a real value it should not."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated on channels: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; pool -> 1x1."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int, int, int, int]):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3b = channels
        self.b0 = Unit3D(in_channels, b0)
        self.b1a = Unit3D(in_channels, b1a)
        self.b1b = Unit3D(b1a, b1b, kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, b2a)
        self.b2b = Unit3D(b2a, b2b, kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, b3b)
        self.out_channels = b0 + b1b + b2b + b3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


class I3D(nn.Module):
    """Inception-v1 I3D: RGB clips (B, 3, T, 224, 224) in the range its weights expect -> logits (B, C, T').

    The published Kinetics weights expect pixels in [-1, 1]. T >= 9; T' = ceil(ceil(ceil(T/2)/2)/2) - 1
    (1 for 9 to 16 frames). FVD averages the logits over T'. Constructed without weights it is randomly
    initialised, which is for tests only: load weights with `eval.fvd.load_i3d`.
    """

    def __init__(self, num_classes: int = 400, in_channels: int = 3):
        super().__init__()
        self.in_channels = in_channels
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        channels = 192
        for name in ("Mixed_3b", "Mixed_3c"):
            channels = self._add_block(name, channels)
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            channels = self._add_block(name, channels)
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        for name in ("Mixed_5b", "Mixed_5c"):
            channels = self._add_block(name, channels)
        self.avg_pool = nn.AvgPool3d((2, 7, 7), stride=(1, 1, 1))
        # Identity at eval; kept so the module tree matches the original (p is the original's, too).
        self.dropout = nn.Dropout(0.5)
        self.logits = Unit3D(channels, num_classes, classifier=True)

    def _add_block(self, name: str, in_channels: int) -> int:
        block = InceptionBlock(in_channels, MIXED_CHANNELS[name])
        self.add_module(name, block)
        return block.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"I3D takes clips (B, {self.in_channels}, T, H, W), got shape {tuple(x.shape)}")
        if x.shape[2] < MIN_FRAMES or tuple(x.shape[3:]) != (FRAME_SIZE, FRAME_SIZE):
            raise ValueError(
                f"I3D needs at least {MIN_FRAMES} frames of {FRAME_SIZE}x{FRAME_SIZE}, got "
                f"{x.shape[2]} frames of {x.shape[3]}x{x.shape[4]}; resize with eval.fvd.preprocess_clips"
            )
        for name in ENDPOINTS:
            x = getattr(self, name)(x)
        x = self.logits(self.dropout(self.avg_pool(x)))
        return x.squeeze(4).squeeze(3)
