"""Tiny models of the SD1.5 + AnimateDiff architectures for tests: same classes, a few thousand weights.

Every builder is seeded and fills *every* parameter with distinct random values (diffusers initialises
norms to ones and many biases to zeros, and identical tensors would hide swapped keys in a converter).
The tiny-model rule (DIFFUSERS.md): the motion module's ``norm_num_groups`` must divide every block's
channels, and so must the image UNet's and the VAE's.

Reuse these from any test module as ``from tiny_models import tiny_motion_unet``: pytest puts tests/ on
sys.path (rootdir-relative "prepend" import mode; tests/ has no __init__.py).
"""

from __future__ import annotations

import torch

TINY_BLOCK_OUT_CHANNELS = (32, 64)
TINY_CROSS_ATTENTION_DIM = 32
TINY_LATENT_CHANNELS = 4

# A motion adapter for the format tests. Four blocks because diffusers' version detection of an
# original-layout file reads up_blocks.2 (and calls its 320-channel variant SDXL), 16/32 channels so the
# files stay a few hundred KB. The v1/v2/v3 differences are the AnimateDiff ones (DIFFUSERS.md).
FORMAT_BLOCK_OUT_CHANNELS = (16, 32, 32, 32)
_VERSION_DIFFERENCES = {
    "v1": {"use_motion_mid_block": False, "motion_max_seq_length": 24},
    "v2": {"use_motion_mid_block": True, "motion_max_seq_length": 32},
    "v3": {"use_motion_mid_block": False, "motion_max_seq_length": 32},
}


def randomize_(module: torch.nn.Module, seed: int, std: float = 0.1) -> torch.nn.Module:
    """Overwrite every parameter (not buffers) with seeded N(0, std) values, in place; returns module."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * std)
    return module


def tiny_motion_adapter_config(
    version: str = "v2", block_out_channels=FORMAT_BLOCK_OUT_CHANNELS, **overrides
):
    """``MotionAdapter(**config)`` kwargs of an AnimateDiff v1/v2/v3-shaped adapter, tiny."""
    if version not in _VERSION_DIFFERENCES:
        raise ValueError(f"version must be one of {sorted(_VERSION_DIFFERENCES)}, got {version!r}")
    config = {
        "block_out_channels": tuple(block_out_channels),
        "motion_layers_per_block": 2,
        "motion_transformer_layers_per_block": 1,
        "motion_mid_block_layers_per_block": 1,
        "motion_transformer_layers_per_mid_block": 1,
        "motion_num_attention_heads": 2,
        "motion_norm_num_groups": 8,
        **_VERSION_DIFFERENCES[version],
    }
    config.update(overrides)
    return config


def tiny_motion_adapter(version: str = "v2", seed: int = 0, **overrides):
    from diffusers import MotionAdapter

    return randomize_(MotionAdapter(**tiny_motion_adapter_config(version, **overrides)), seed)


def tiny_unet2d_config() -> dict:
    """An SD1.5-architecture image UNet (cross-attention down blocks, a plain last down block), tiny."""
    return {
        "sample_size": 8,
        "in_channels": TINY_LATENT_CHANNELS,
        "out_channels": TINY_LATENT_CHANNELS,
        "block_out_channels": TINY_BLOCK_OUT_CHANNELS,
        "layers_per_block": 1,
        "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
        "cross_attention_dim": TINY_CROSS_ATTENTION_DIM,
        "attention_head_dim": 8,
        "norm_num_groups": 8,
    }


def tiny_unet2d(seed: int = 0):
    from diffusers import UNet2DConditionModel

    return randomize_(UNet2DConditionModel(**tiny_unet2d_config()), seed, std=0.05)


def tiny_motion_unet(seed: int = 0, version: str = "v2"):
    """A ``UNetMotionModel``: the tiny image UNet with a tiny adapter of matching channels, in eval mode."""
    from diffusers import UNetMotionModel

    adapter = tiny_motion_adapter(
        version, seed=seed + 1, block_out_channels=TINY_BLOCK_OUT_CHANNELS, motion_layers_per_block=1
    )
    return UNetMotionModel.from_unet2d(tiny_unet2d(seed), adapter).eval()


def tiny_vae(seed: int = 0):
    """An SD-architecture ``AutoencoderKL`` with two blocks: frames are 2x the latent size."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32),
        latent_channels=TINY_LATENT_CHANNELS,
        norm_num_groups=8,
        sample_size=16,
    )
    return randomize_(vae, seed, std=0.05).eval()


def tiny_text_encoder(seed: int = 0):
    """A CLIP-architecture text encoder with the full CLIP vocabulary (so ``clip_tokenizer`` fits)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=TINY_CROSS_ATTENTION_DIM,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=TINY_CROSS_ATTENTION_DIM,
    )
    torch.manual_seed(seed)
    return CLIPTextModel(config).eval()


def clip_tokenizer():
    """The exact SD1.5 (OpenAI CLIP) tokenizer, built offline (the package's one implementation)."""
    from lightning_distill.models.tokenizer import sd15_tokenizer

    return sd15_tokenizer()


def he_init(network: torch.nn.Module) -> torch.nn.Module:
    """He-initialise every convolution. PyTorch's default init shrinks the signal through deep metric
    networks (untrained I3D logits and Inception features come out near 1e-2 and 1e-8, the same for any
    input), which would make every distance ~0 whatever the code does."""
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return network


TINY_CLIP = "ld-test-tiny-clip"


def tiny_clip_scorer(config_folder):
    """A small open_clip architecture, registered under its own name, randomly initialised (weights=None:
    every score it gives says it is no metric)."""
    import json

    import open_clip

    from eval.clip_score import ClipScorer

    config = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }
    (config_folder / f"{TINY_CLIP}.json").write_text(json.dumps(config))
    open_clip.add_model_config(config_folder)
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(TINY_CLIP, pretrained=None)
    return ClipScorer(model.eval(), preprocess, open_clip.get_tokenizer(TINY_CLIP), TINY_CLIP, weights=None)
