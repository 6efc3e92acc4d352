"""The released AnimateLCM (arXiv 2402.00769), run through diffusers as its model card runs it.

    adapter = MotionAdapter.from_pretrained("wangfuyun/AnimateLCM")
    pipe = AnimateDiffPipeline.from_pretrained(<SD1.5-family model>, motion_adapter=adapter)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config, beta_schedule="linear")
    pipe.load_lora_weights("wangfuyun/AnimateLCM", weight_name="AnimateLCM_sd15_t2v_lora.safetensors",
                           adapter_name="lcm-lora")
    pipe.set_adapters(["lcm-lora"], [0.8])
    pipe(prompt, num_frames=16, guidance_scale=2.0, num_inference_steps=6)

Here every file comes from a local path (nothing is downloaded): the AnimateLCM folder (``config.json`` +
``diffusion_pytorch_model.safetensors``, config key ``eval.animatelcm.adapter``) and its image LCM-LoRA
(config key ``eval.animatelcm.lora``; by default the file of that name inside the folder, as the Hugging Face
repository holds both). The LoRA is a kohya-style SD1.5 UNet LoRA (``lora_unet_<module>.lora_down.weight``,
``.lora_up.weight``, optional ``.alpha``): AnimateLCM's own loader (``convert_lora``) reads that layout, and
diffusers converts it (``_convert_non_diffusers_lora_to_diffusers``), scaling each layer by alpha / rank when
the file has an alpha.

LCMScheduler (diffusers 0.42): linear betas 0.00085 to 0.012 as AnimateDiff, ``original_inference_steps`` 50
(the 50-step DDIM grid of the distillation, every 20th timestep), ``set_timesteps(n)`` picks n of its 50
timesteps evenly and ignores ``timestep_spacing`` and ``steps_offset``: n = 4 gives [999, 759, 499, 259].
So n can be 1 to 50; the card recommends 4 to 8 steps at guidance 1.0 to 2.0.
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor
from tqdm.auto import tqdm

from eval.weights import MissingWeightsError
from lightning_distill.diffusion.generate import clip_noise

PUBLISHED_AT = "https://huggingface.co/wangfuyun/AnimateLCM"
ADAPTER_KEY = "eval.animatelcm.adapter"
LORA_KEY = "eval.animatelcm.lora"
LORA_FILENAME = "AnimateLCM_sd15_t2v_lora.safetensors"
ADAPTER_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")
LORA_ADAPTER_NAME = "lcm-lora"
LORA_SCALE = 0.8  # the model card's set_adapters weight
GUIDANCE_SCALE = 2.0  # the model card's example; it recommends 1.0 to 2.0
ORIGINAL_INFERENCE_STEPS = 50  # LCMScheduler's default, the size of AnimateLCM's DDIM solver grid
BASE_COMPONENTS = ("vae", "text_encoder", "tokenizer", "unet")
# The step-noise stream of the LCM sampler, kept apart from the starting noise (clip_noise).
_STEP_NOISE_STREAM = 0x1C4


class AnimateLCMFormatError(ValueError):
    """A file that is not what AnimateLCM releases; the message names it and what was expected."""


def animatelcm_scheduler(base_scheduler_config: Mapping | None = None):
    """The model card's ``LCMScheduler.from_config(base.scheduler.config, beta_schedule="linear")``; without
    a base scheduler, LCMScheduler's own defaults, which hold the same betas."""
    from diffusers import LCMScheduler

    if base_scheduler_config is None:
        return LCMScheduler(beta_schedule="linear")
    # Keys of other schedulers (PNDM's skip_prk_steps in every SD1.5 folder) would only raise a warning.
    accepted = set(inspect.signature(LCMScheduler.__init__).parameters)
    config = {k: v for k, v in base_scheduler_config.items() if k in accepted or k.startswith("_")}
    return LCMScheduler.from_config(config, beta_schedule="linear")


def _missing(what: str, path: Path, key: str, reason: str) -> MissingWeightsError:
    return MissingWeightsError(
        f"AnimateLCM {what} not found: {path} {reason}. It is published at {PUBLISHED_AT} (the folder holds "
        f"config.json, {ADAPTER_FILES[0]} and {LORA_FILENAME}); download it and pass its path with {key}=..."
    )


def _resolve_files(adapter_dir, lora_path) -> tuple[Path, Path, str | None]:
    """(adapter folder, LoRA file, weights variant) that exist, or one MissingWeightsError."""
    adapter_dir = Path(adapter_dir).expanduser()
    if adapter_dir.is_file():
        raise AnimateLCMFormatError(
            f"{ADAPTER_KEY}={adapter_dir} is a file; it takes the AnimateLCM folder (config.json + "
            f"{ADAPTER_FILES[0]}). For the original-layout AnimateLCM_sd15_t2v.ckpt, convert it first: "
            f"python -m lightning_distill.export --input {adapter_dir} --layout diffusers --output <folder>"
        )
    if not adapter_dir.is_dir():
        raise _missing("motion adapter", adapter_dir, ADAPTER_KEY, "does not exist")
    if not (adapter_dir / "config.json").is_file():
        raise _missing("motion adapter", adapter_dir / "config.json", ADAPTER_KEY, "does not exist")
    present = [name for name in ADAPTER_FILES if (adapter_dir / name).is_file()]
    if not present:
        raise _missing("motion adapter", adapter_dir / ADAPTER_FILES[0], ADAPTER_KEY, "does not exist")
    variant = None if present[0] == ADAPTER_FILES[0] else "fp16"
    lora_path = Path(lora_path).expanduser() if lora_path is not None else adapter_dir / LORA_FILENAME
    if not lora_path.is_file():
        raise _missing("LCM-LoRA", lora_path, LORA_KEY, "is not a file")
    return adapter_dir, lora_path, variant


def _lora_keys(lora_path: Path) -> list[str]:
    try:
        with safe_open(str(lora_path), framework="pt") as handle:
            return list(handle.keys())
    except (SafetensorError, OSError) as err:
        raise AnimateLCMFormatError(
            f"cannot read {lora_path} as safetensors ({err}); download {LORA_FILENAME} again from {PUBLISHED_AT}"
        ) from err


def _base_pipeline(base, adapter, torch_dtype, lora_keys: list[str]):
    """An AnimateDiffPipeline of ``base`` with ``adapter`` and the model card's scheduler."""
    from diffusers import AnimateDiffPipeline, DiffusionPipeline

    if isinstance(base, str | os.PathLike):
        folder = Path(base).expanduser()
        if not (folder / "model_index.json").is_file():
            raise FileNotFoundError(
                f"base model folder not found: {folder} has no model_index.json; AnimateLCM runs on a local "
                "diffusers folder of an SD1.5-family model, or on its components (vae, text_encoder, tokenizer, unet)"
            )
        pipe = AnimateDiffPipeline.from_pretrained(
            str(folder), motion_adapter=adapter, local_files_only=True, torch_dtype=torch_dtype
        )
        pipe.scheduler = animatelcm_scheduler(pipe.scheduler.config)
        return pipe
    components = dict(base.components) if isinstance(base, DiffusionPipeline) else dict(base)
    missing = [name for name in BASE_COMPONENTS if components.get(name) is None]
    if missing:
        raise ValueError(
            f"load_animatelcm: base components lack {', '.join(missing)}; pass a mapping with "
            f"{', '.join(BASE_COMPONENTS)} (and optionally scheduler), a diffusers pipeline, or a local folder"
        )
    text_encoder = components["text_encoder"]
    if any(key.startswith(("lora_te", "text_encoder.")) for key in lora_keys):
        # The LoRA would be injected into the caller's text encoder, which the students share.
        text_encoder = copy.deepcopy(text_encoder)
    scheduler = components.get("scheduler")
    pipe = AnimateDiffPipeline(
        vae=components["vae"],
        text_encoder=text_encoder,
        tokenizer=components["tokenizer"],
        unet=components["unet"],  # UNetMotionModel.from_unet2d copies it: the caller's UNet stays LoRA-free
        motion_adapter=adapter,
        scheduler=animatelcm_scheduler(scheduler.config if scheduler is not None else None),
    )
    return pipe


def _adapted_layers(pipe, adapter_name: str) -> int:
    modules = [pipe.unet, getattr(pipe, "text_encoder", None)]
    return sum(
        adapter_name in getattr(layer, "lora_A", {})
        for module in modules
        if module is not None
        for layer in module.modules()
    )


def load_animatelcm(
    base,
    adapter_dir: str | os.PathLike,
    lora_path: str | os.PathLike | None = None,
    lora_scale: float = LORA_SCALE,
    *,
    torch_dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
):
    """The released AnimateLCM as a diffusers ``AnimateDiffPipeline`` with the LCM-LoRA set to ``lora_scale``.

    Args:
        base: an SD1.5-family base model: a local diffusers folder, a diffusers pipeline, or a mapping with
            ``vae``, ``text_encoder``, ``tokenizer``, ``unet`` (a ``UNet2DConditionModel``) and optionally
            ``scheduler`` (whose config the LCMScheduler starts from, as the model card does). The caller's
            UNet is copied, never modified; its text encoder is copied if the LoRA adapts it.
        adapter_dir: the AnimateLCM folder (config key ``eval.animatelcm.adapter``).
        lora_path: the LCM-LoRA (``eval.animatelcm.lora``); default ``adapter_dir/AnimateLCM_sd15_t2v_lora.safetensors``.
        lora_scale: the LoRA's weight (0.8 on the model card).
        torch_dtype: the dtype to load a base model folder and the adapter in; components keep theirs.
    Raises:
        MissingWeightsError (a FileNotFoundError) naming the missing file, where it is published and its
        config key; AnimateLCMFormatError for a file that is not what AnimateLCM releases.
    """
    from diffusers import MotionAdapter

    if torch_dtype is not None and not isinstance(base, str | os.PathLike):
        raise ValueError(
            "load_animatelcm: torch_dtype applies to a base model folder; components are shared with the "
            "caller and are not cast here: pass them in the dtype to run in (the pipeline follows the UNet's)"
        )
    if not (np.isfinite(lora_scale) and lora_scale >= 0):
        raise ValueError(f"load_animatelcm: lora_scale must be a finite weight >= 0, got {lora_scale}")
    adapter_dir, lora_path, variant = _resolve_files(adapter_dir, lora_path)
    lora_keys = _lora_keys(lora_path)
    adapter = MotionAdapter.from_pretrained(
        str(adapter_dir), local_files_only=True, torch_dtype=torch_dtype, variant=variant
    )
    pipe = _base_pipeline(base, adapter, torch_dtype, lora_keys)
    try:
        pipe.load_lora_weights(
            str(lora_path.parent),
            weight_name=lora_path.name,
            adapter_name=LORA_ADAPTER_NAME,
            local_files_only=True,
        )
    except (ValueError, KeyError) as err:
        raise AnimateLCMFormatError(
            f"{lora_path} is not an SD1.5 LoRA that diffusers can load ({err}); {LORA_KEY} takes {LORA_FILENAME} "
            f"from {PUBLISHED_AT}"
        ) from err
    # diffusers only warns about LoRA tensors that match no layer: a LoRA for another architecture would
    # otherwise load as a partial no-op and the baseline would silently run without it.
    expected = sum(key.endswith(("lora_down.weight", ".down.weight", "lora_A.weight")) for key in lora_keys)
    adapted = _adapted_layers(pipe, LORA_ADAPTER_NAME)
    if adapted != expected:
        raise AnimateLCMFormatError(
            f"{lora_path}: {adapted} of its {expected} LoRA layers matched a layer of the base model; it is not a "
            f"LoRA for this SD1.5-architecture UNet ({LORA_KEY} takes {LORA_FILENAME} from {PUBLISHED_AT})"
        )
    pipe.set_adapters([LORA_ADAPTER_NAME], [float(lora_scale)])
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device) if device is not None else pipe


def _step_generator(index: int, seed: int) -> torch.Generator:
    """The LCM sampler re-noises between steps; each clip draws that noise from its own stream."""
    (state,) = np.random.SeedSequence([int(seed), int(index), _STEP_NOISE_STREAM]).generate_state(
        1, np.uint64
    )
    return torch.Generator().manual_seed(int(state))


@torch.no_grad()
def generate_animatelcm(
    pipe,
    prompts: list[str],
    num_steps: int,
    *,
    num_frames: int = 16,
    height: int | None = None,
    width: int | None = None,
    guidance_scale: float = GUIDANCE_SCALE,
    negative_prompt: str | None = None,
    seed: int = 0,
    first_index: int = 0,
    batch_size: int = 8,
    progress: bool = True,
) -> Tensor:
    """Videos (N, 3, F, H, W), float32 in [-1, 1] on the CPU, one per prompt, with ``num_steps`` LCM steps.

    Clip k starts from the project's noise of index ``first_index + k`` (``clip_noise``, shared with the
    students' generation) and re-noises from its own stream, so a clip does not depend on the batch size.
    ``height``/``width`` default to the pipeline's (the UNet's sample size times the VAE factor).
    ``negative_prompt`` None means the empty prompt as the unconditional input when guidance_scale > 1.
    """
    if not isinstance(prompts, list | tuple) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError("generate_animatelcm: prompts must be a non-empty list of strings")
    if not 1 <= int(num_steps) <= ORIGINAL_INFERENCE_STEPS:
        raise ValueError(
            f"generate_animatelcm: num_steps must be 1 to {ORIGINAL_INFERENCE_STEPS} (LCMScheduler picks its "
            f"steps from a {ORIGINAL_INFERENCE_STEPS}-step grid), got {num_steps}"
        )
    if guidance_scale < 1.0:
        raise ValueError(
            f"generate_animatelcm: guidance_scale must be >= 1 (1 = no CFG), got {guidance_scale}"
        )
    if num_frames < 1 or batch_size < 1:
        raise ValueError(
            f"generate_animatelcm: num_frames and batch_size must be >= 1, got {num_frames}, {batch_size}"
        )
    factor = pipe.vae_scale_factor
    height = height or pipe.unet.config.sample_size * factor
    width = width or pipe.unet.config.sample_size * factor
    if height % factor or width % factor:
        raise ValueError(
            f"generate_animatelcm: height and width must be multiples of {factor}, got {height}x{width}"
        )
    shape = (pipe.unet.config.in_channels, num_frames, height // factor, width // factor)
    videos = []
    starts = range(0, len(prompts), batch_size)
    for start in tqdm(starts, disable=not progress, desc=f"AnimateLCM {num_steps} steps", unit="batch"):
        chunk = list(prompts[start : start + batch_size])
        indices = range(first_index + start, first_index + start + len(chunk))
        latents = torch.stack([clip_noise(i, seed, shape) for i in indices])
        frames = pipe(
            prompt=chunk,
            negative_prompt=[negative_prompt] * len(chunk) if negative_prompt is not None else None,
            num_frames=num_frames,
            height=height,
            width=width,
            num_inference_steps=int(num_steps),
            guidance_scale=guidance_scale,
            latents=latents.to(pipe.unet.device, pipe.unet.dtype),
            generator=[_step_generator(i, seed) for i in indices],
            output_type="pt",
        ).frames  # (B, F, 3, H, W) in [0, 1]
        videos.append(frames.permute(0, 2, 1, 3, 4).float().cpu() * 2 - 1)
    return torch.cat(videos)
