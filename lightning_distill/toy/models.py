"""The toy world's models: the exact SD1.5 + AnimateDiff v2 architectures (the same diffusers classes, the
same block types and levels), only tiny. The one place their sizes live.

Sizes are set by the toy world's clip (8 frames of 32x32, `world.py`) and the budgets on a 2-core CPU:
the VAE downsamples by 4 (three encoder blocks), so latents are 4 x 8 x 8 per frame and one forward of
the motion UNet over 16 clips of 8 frames takes ~0.1 s; the image UNet keeps SD1.5's four levels
(three cross-attention down blocks and a plain one) so that motion modules, discriminator and the
original-layout export see the same block structure as the full model.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

# SD1.5's block widths are (320, 640, 1280, 1280); these keep the shape of that ladder at 1/10 to 1/20.
BLOCK_OUT_CHANNELS = (32, 64, 64, 64)
# SD1.5 conditions on 768-d CLIP ViT-L/14 token states; the toy text encoder is 32-d.
CROSS_ATTENTION_DIM = 32
LATENT_CHANNELS = 4
NORM_NUM_GROUPS = 16  # divides every block's channels: the tiny-model rule (DIFFUSERS.md)

VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [32, 64, 64],
    "layers_per_block": 1,
    "latent_channels": LATENT_CHANNELS,
    "norm_num_groups": NORM_NUM_GROUPS,
    "sample_size": 32,
    # Replaced after training by 1 / std of the latents, the way SD's 0.18215 was chosen.
    "scaling_factor": 1.0,
}

UNET_CONFIG = {
    "sample_size": 8,
    "in_channels": LATENT_CHANNELS,
    "out_channels": LATENT_CHANNELS,
    "block_out_channels": list(BLOCK_OUT_CHANNELS),
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "layers_per_block": 1,
    "cross_attention_dim": CROSS_ATTENTION_DIM,
    "attention_head_dim": 8,
    "norm_num_groups": NORM_NUM_GROUPS,
}

# AnimateDiff v2's layout (motion modules at every level plus a mid block, max 32 frames), tiny: one
# motion layer per block, because diffusers pairs motion layers with the image UNet's layers_per_block
# (SD1.5: 2, the toy: 1), and four heads instead of eight.
MOTION_ADAPTER_CONFIG = {
    "block_out_channels": list(BLOCK_OUT_CHANNELS),
    "motion_layers_per_block": 1,
    "motion_transformer_layers_per_block": 1,
    "motion_mid_block_layers_per_block": 1,
    "motion_transformer_layers_per_mid_block": 1,
    "motion_num_attention_heads": 4,
    "motion_norm_num_groups": NORM_NUM_GROUPS,
    "motion_max_seq_length": 32,
    "use_motion_mid_block": True,
}

# CLIP's text transformer (causal attention, quick-GELU, 77 positions, the full 49408-token BPE vocabulary
# so the exact SD1.5 tokenizer works), at 32 wide and 2 layers deep.
TEXT_ENCODER_CONFIG = {
    "vocab_size": 49408,
    "hidden_size": CROSS_ATTENTION_DIM,
    "intermediate_size": 4 * CROSS_ATTENTION_DIM,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": CROSS_ATTENTION_DIM,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 49407,
}

# The style fine-tunes are LoRAs on the shared toy "SD1.5", as many community base models are merges of
# style LoRAs into SD1.5: they keep the repository small and the styles related, so that one motion
# module can serve them all. Attention projections and resnet convolutions (LoCon) both adapt.
STYLE_LORA_CONFIG = {
    "r": 8,
    "lora_alpha": 8,
    "target_modules": ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2", "proj_in", "proj_out"],
    "init_lora_weights": "gaussian",
}


def build_vae(seed: int = 0) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(**VAE_CONFIG)


def build_unet(seed: int = 0) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(**UNET_CONFIG)


def build_text_encoder(seed: int = 0) -> CLIPTextModel:
    torch.manual_seed(seed)
    return CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER_CONFIG))


def build_motion_adapter(seed: int = 0) -> MotionAdapter:
    """A fresh motion module that starts as the identity, as AnimateDiff initialises its motion modules
    (zero output projections), so the video model begins exactly as the image model frame by frame."""
    torch.manual_seed(seed)
    adapter = MotionAdapter(**MOTION_ADAPTER_CONFIG)
    with torch.no_grad():
        for name, module in adapter.named_modules():
            if name.endswith("proj_out") and isinstance(module, torch.nn.Linear):
                module.weight.zero_()
                module.bias.zero_()
    return adapter
