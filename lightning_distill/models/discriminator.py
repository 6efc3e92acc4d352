"""The discriminator of progressive adversarial distillation (ADL §3.3, SDXL-Lightning §3.3).

Backbone d: the encoder and mid block of the AnimateDiff UNet (image layers and motion layers), copied,
fully trainable, working in latent space and conditioned on the timestep and the text as the UNet is.
The base-model ("flow") condition is a learnable embedding of the base model's index added to the time
embedding, initialised to zero so that at the start d computes exactly what the UNet computes.

Heads, on the mid-block features (B, C, F, h, w):
  conditional   D(x_t, x_next): d(x_t) and d(x_next) concatenated on channels -> head -> one logit;
  unconditional D'(x_next): head on d(x_next) alone (the relaxation of the second phase).
A head is repeated [Conv3d kernel 4 stride 2, GroupNorm, SiLU] blocks, then a mean over what is left and
a projection to one logit. Kernel 4 / stride 2 applies along every axis long enough to halve (>= 2);
shorter axes take kernel 1 / stride 1, so the same head serves the paper's (1280, 16, 8, 8) mid features
and the toy world's (64, 8, 4, 4) level-1 ones. Blocks are added until every axis is 1, `max_blocks` is
reached, or a block's GroupNorm would normalise fewer than MIN_GROUP_ELEMENTS values per group (see there).
Logits are raw (the losses in `stages.gan_loss` apply the sigmoid).

`feature_level` picks the features the heads read: "mid" (the papers') or the index k of a down block,
whose output before its downsampler is used (h / 2^k); the backbone then ends there, so nothing it holds
goes unused (DDP requires that). The toy world reads level 1: its mid block is 1 x 1 (latents 8 x 8),
where the paper's is 8 x 8 (latents 64 x 64), and a head on one vector per frame cannot see the texture
that tells the toy's styles apart.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def _group_count(channels: int) -> int:
    return next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)


# A GroupNorm over few values per group erases what the head should read: over one position with two
# channels per group (the toy's level-1 head, 64 channels, once its third block reached 1 x 1 x 1) it maps
# every input to about (+1, -1) or (-1, +1). That head could not be trained: offline, on the 32 -> 8
# stage's real moves against real moves mixed 30% with noise, held-out accuracy 0.54 after 150 steps, and
# in the 4-step runs D's accuracy stayed at 0.50 through every adversarial stage, so the student followed
# an uninformed discriminator. With blocks stopped at this bound (one block there): 1.00 after 50 steps.
# The paper's heads (40 channels per group) keep all four blocks.
MIN_GROUP_ELEMENTS = 16


def feature_depth(unet: nn.Module, feature_level: int | str) -> int:
    """How many times the features at `feature_level` ("mid" or a down block's index) have been halved:
    the mid block sits below the last down block, which has no downsampler. Also the index of their
    width in `block_out_channels`."""
    levels = len(unet.config.block_out_channels)
    if feature_level == "mid":
        return levels - 1
    if feature_level not in range(levels):
        raise ValueError(
            f"discriminator feature_level {feature_level!r}: use 'mid' or a down block index 0..{levels - 1}"
        )
    return feature_level


class DiscriminatorHead(nn.Module):
    def __init__(
        self, in_channels: int, feature_shape: tuple[int, int, int], channels: int, max_blocks: int = 4
    ):
        super().__init__()
        self.feature_shape = tuple(feature_shape)
        layers, shape, width = [], list(feature_shape), in_channels
        per_group = channels // _group_count(channels)
        for _ in range(max_blocks):
            if all(size == 1 for size in shape):
                break
            kernel = [4 if size >= 2 else 1 for size in shape]
            stride = [2 if size >= 2 else 1 for size in shape]
            padding = [1 if size >= 2 else 0 for size in shape]
            after = [
                (size + 2 * p - k) // s + 1
                for size, k, s, p in zip(shape, kernel, stride, padding, strict=True)
            ]
            if math.prod(after) * per_group < MIN_GROUP_ELEMENTS:
                break
            layers += [
                nn.Conv3d(width, channels, kernel, stride, padding),
                nn.GroupNorm(_group_count(channels), channels),
                nn.SiLU(),
            ]
            shape, width = after, channels
        self.blocks = nn.Sequential(*layers)
        self.project = nn.Linear(width, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, F, h, w) -> (B,) logits."""
        if tuple(features.shape[2:]) != self.feature_shape:
            raise ValueError(
                f"discriminator head: built for features of (F, h, w) = {self.feature_shape}, got "
                f"{tuple(features.shape[2:])}; build it with Discriminator.from_unet(..., latent_shape=(F, h, w))"
                " of the latents it will judge"
            )
        return self.project(self.blocks(features).mean(dim=(2, 3, 4))).squeeze(1)


class Discriminator(nn.Module):
    """See the module docstring. Build it with `Discriminator.from_unet`."""

    def __init__(
        self,
        unet: nn.Module,
        num_base_models: int,
        feature_shape: tuple[int, int, int],
        head_channels: int | None = None,
        max_blocks: int = 4,
        gradient_checkpointing: bool = False,
        feature_level: int | str = "mid",
    ):
        super().__init__()
        depth = feature_depth(unet, feature_level)
        self.conv_in = copy.deepcopy(unet.conv_in)
        self.time_proj = copy.deepcopy(unet.time_proj)
        self.time_embedding = copy.deepcopy(unet.time_embedding)
        if feature_level == "mid":
            self.down_blocks = copy.deepcopy(unet.down_blocks)
            self.mid_block = copy.deepcopy(unet.mid_block)
        else:
            self.down_blocks = copy.deepcopy(unet.down_blocks[: depth + 1])
            self.down_blocks[-1].downsamplers = None  # its features are read before downsampling
            self.mid_block = None
        channels = unet.config.block_out_channels[depth]
        self.requires_grad_(True)
        time_dim = self.time_embedding.linear_2.out_features
        self.base_model_embedding = nn.Embedding(num_base_models, time_dim)
        nn.init.zeros_(self.base_model_embedding.weight)
        width = head_channels or channels
        self.conditional_head = DiscriminatorHead(2 * channels, feature_shape, width, max_blocks)
        self.unconditional_head = DiscriminatorHead(channels, feature_shape, width, max_blocks)
        self.gradient_checkpointing = gradient_checkpointing

    @classmethod
    def from_unet(
        cls, unet: nn.Module, num_base_models: int, latent_shape: tuple[int, int, int], **options
    ) -> Discriminator:
        """From a UNetMotionModel; `latent_shape` (F, h, w) of the clips it will judge fixes the head's
        layout (the mid features are (F, h / 2^(levels-1), w / 2^(levels-1)), level k's (F, h / 2^k, w / 2^k))."""
        frames, height, width = latent_shape
        factor = 2 ** feature_depth(unet, options.get("feature_level", "mid"))
        feature_shape = (frames, max(1, -(-height // factor)), max(1, -(-width // factor)))
        return cls(unet, num_base_models, feature_shape, **options)

    def _run(self, block, *args, **kwargs):
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(lambda *a: block(*a, **kwargs), *args, use_reentrant=False)
        return block(*args, **kwargs)

    def features(
        self, x: torch.Tensor, t: torch.Tensor, frame_states: torch.Tensor, model_index: torch.Tensor
    ) -> torch.Tensor:
        """Features (B, C, F, h, w) at `feature_level` of latents x (B, C, F, H, W) at timesteps t (B,)
        (clean = -1 reads as 0), text states per frame (B*F, L, D), base-model indices (B,), as
        UNetMotionModel.forward computes them."""
        batch, _, frames = x.shape[:3]
        t_emb = self.time_proj(t.clamp(min=0)).to(dtype=x.dtype)
        emb = self.time_embedding(t_emb) + self.base_model_embedding(model_index)
        emb = emb.repeat_interleave(frames, dim=0)
        sample = x.permute(0, 2, 1, 3, 4).reshape(batch * frames, -1, *x.shape[3:])
        sample = self.conv_in(sample)
        for block in self.down_blocks:
            if getattr(block, "has_cross_attention", False):
                sample, _ = self._run(
                    block, sample, emb, encoder_hidden_states=frame_states, num_frames=frames
                )
            else:
                sample, _ = self._run(block, sample, emb, num_frames=frames)
        # Without a mid block (feature_level k), the last kept down block has no downsampler: its output
        # is level k's features.
        if self.mid_block is not None:
            motion = {"num_frames": frames} if hasattr(self.mid_block, "motion_modules") else {}
            sample = self._run(self.mid_block, sample, emb, encoder_hidden_states=frame_states, **motion)
        return sample.reshape(batch, frames, *sample.shape[1:]).permute(0, 2, 1, 3, 4)

    def conditional(self, x_t, x_next, t, t_next, frame_states, model_index) -> torch.Tensor:
        """D(x_t, x_next | t, t_next, text, base model): (B,) logits."""
        both = torch.cat(
            [
                self.features(x_t, t, frame_states, model_index),
                self.features(x_next, t_next, frame_states, model_index),
            ],
            dim=1,
        )
        return self.conditional_head(both)

    def unconditional(self, x_next, t_next, frame_states, model_index) -> torch.Tensor:
        """D'(x_next | t_next, text, base model): (B,) logits."""
        return self.unconditional_head(self.features(x_next, t_next, frame_states, model_index))

    def real_and_fake(
        self, x_t, real, fake, t, t_next, frame_states, model_index, conditional: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(D(real), D(fake)) for two destinations from the same x_t, as `conditional` (or
        `unconditional`) gives them one at a time, with less work: the destinations pass the backbone as
        one batch of 2B, and x_t's features, the same for both, are computed once: in the conditional
        phase the discriminator update runs the backbone on 3B clips instead of 4B."""
        batch = real.shape[0]
        destinations = self.features(
            torch.cat([real, fake]), t_next.repeat(2), frame_states.repeat(2, 1, 1), model_index.repeat(2)
        )
        if conditional:
            start = self.features(x_t, t, frame_states, model_index).repeat(2, 1, 1, 1, 1)
            logits = self.conditional_head(torch.cat([start, destinations], dim=1))
        else:
            logits = self.unconditional_head(destinations)
        return logits[:batch], logits[batch:]
