"""Loading a base model from what a user has on disk, never from the network.

Kinds (`BaseModelSpec.kind`):
  diffusers    a local diffusers folder (unet/, vae/, text_encoder/, tokenizer/);
  single_file  one SD1.5 `.safetensors` checkpoint, with `config_dir` (a local diffusers folder holding
               the configs and tokenizer; without it diffusers silently retries online) or
               `original_config` (the v1-inference.yaml);
  ckpt         the same as a pickled `.ckpt`, opened only with `torch.load(weights_only=True)`;
  toy          the toy teacher's folder (`toy/teacher/folder.py`); toy members share one VAE and one text
               encoder object per folder, so a pool of five toy styles holds them once.

Every failure is one `BaseModelLoadError` naming the path, the layout expected, where such weights are
published and the config key to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from lightning_distill.diffusion.schedule import NoiseSchedule
from lightning_distill.models.base_model import BaseModelSpec
from lightning_distill.models.tokenizer import MAX_LENGTH, sd15_tokenizer


class BaseModelLoadError(RuntimeError):
    pass


@dataclass
class BaseModel:
    """A frozen SD1.5-family image model: its UNet (None once a motion UNet has taken a copy), VAE, text
    encoder and tokenizer, and the schedule AnimateDiff samples with (linear betas, whatever the
    checkpoint's own scheduler says)."""

    name: str
    style: str
    unet: torch.nn.Module | None
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    schedule: NoiseSchedule = field(default_factory=NoiseSchedule)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def device(self) -> torch.device:
        return next(self.text_encoder.parameters()).device

    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """(B, 77, D): the text encoder's last hidden state, as SD1.5 conditions on it."""
        ids = self.tokenizer(
            list(prompts), padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt"
        ).input_ids.to(self.device)
        return self.text_encoder(ids).last_hidden_state

    @torch.no_grad()
    def encode_video(self, video: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """(B, 3, F, H, W) in [-1, 1] -> scaled latents (B, 4, F, h, w) (the posterior mean, as SD's
        training scripts precompute)."""
        batch, _, frames, height, width = video.shape
        flat = video.permute(0, 2, 1, 3, 4).reshape(batch * frames, 3, height, width)
        parameter = next(self.vae.parameters())
        latents = (
            torch.cat([self.vae.encode(part.to(parameter)).latent_dist.mean for part in flat.split(chunk)])
            * self.vae.config.scaling_factor
        )
        return latents.reshape(batch, frames, *latents.shape[1:]).permute(0, 2, 1, 3, 4)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """Scaled latents (B, 4, F, h, w) -> video (B, 3, F, H, W) in [-1, 1], decoded in frame chunks."""
        batch, channels, frames = latents.shape[:3]
        flat = latents.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, *latents.shape[3:])
        parameter = next(self.vae.parameters())
        frames_out = (
            torch.cat(
                [
                    self.vae.decode(part.to(parameter) / self.vae.config.scaling_factor).sample
                    for part in flat.split(chunk)
                ]
            )
            .clamp(-1, 1)
            .float()
        )
        return frames_out.reshape(batch, frames, *frames_out.shape[1:]).permute(0, 2, 1, 3, 4)


def _fail(spec: BaseModelSpec, expected: str, reason: str) -> BaseModelLoadError:
    return BaseModelLoadError(
        f"base model '{spec.name}': cannot load {spec.path} ({reason}). Expected {expected}. "
        f"Published at: {spec.published or 'see conf/base_model/' + spec.name + '.yaml'}. "
        f"Point the config at your copy: pool.members.{spec.name}.path=/your/path (or paths.models=DIR)."
    )


def _frozen(model: BaseModel) -> BaseModel:
    for part in (model.unet, model.vae, model.text_encoder):
        if part is not None:
            part.requires_grad_(False).eval()
    return model


def _load_diffusers(spec: BaseModelSpec, dtype) -> BaseModel:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = Path(spec.path)
    expected = "a diffusers folder with unet/, vae/, text_encoder/ and tokenizer/ (model_index.json)"
    if not folder.is_dir():
        raise _fail(spec, expected, "no such folder")
    try:
        unet = UNet2DConditionModel.from_pretrained(
            folder, subfolder="unet", torch_dtype=dtype, local_files_only=True
        )
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype, local_files_only=True)
        text_encoder = CLIPTextModel.from_pretrained(
            folder, subfolder="text_encoder", torch_dtype=dtype, local_files_only=True
        )
        tokenizer = (
            CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", local_files_only=True)
            if (folder / "tokenizer").is_dir()
            else sd15_tokenizer()
        )
    except (OSError, ValueError, RuntimeError) as error:
        raise _fail(spec, expected, f"{type(error).__name__}: {str(error).splitlines()[0]}") from error
    return BaseModel(spec.name, spec.style, unet, vae, text_encoder, tokenizer)


def _check_ckpt(spec: BaseModelSpec) -> None:
    """A `.ckpt` is a pickle: open it only with weights_only=True, and say so when that refuses it."""
    import pickle

    try:
        torch.load(spec.path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:
        raise _fail(
            spec, "a .ckpt holding only tensors", f"it holds other objects and is refused unread: {error}"
        ) from error
    except (OSError, RuntimeError, EOFError) as error:
        raise _fail(spec, "a readable .ckpt", f"{type(error).__name__}: {error}") from error


def _load_single_file(spec: BaseModelSpec, dtype) -> BaseModel:
    from diffusers import StableDiffusionPipeline

    path = Path(spec.path)
    expected = "an SD1.5 checkpoint (.safetensors, or .ckpt for kind ckpt) in the original layout"
    if not path.is_file():
        raise _fail(spec, expected, "no such file")
    if not (spec.config_dir or spec.original_config):
        raise _fail(
            spec,
            expected,
            "neither config_dir nor original_config is set: offline, diffusers needs one of them",
        )
    if spec.kind == "ckpt":
        _check_ckpt(spec)
    options = {"config": spec.config_dir} if spec.config_dir else {"original_config": spec.original_config}
    try:
        pipe = StableDiffusionPipeline.from_single_file(
            str(path), torch_dtype=dtype, local_files_only=True, safety_checker=None, **options
        )
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise _fail(spec, expected, f"{type(error).__name__}: {str(error).splitlines()[0]}") from error
    return BaseModel(spec.name, spec.style, pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer)


@lru_cache(maxsize=8)
def _toy_shared(folder: str, dtype) -> tuple:
    """One VAE and one text encoder per toy folder, shared by every toy member loaded in this process."""
    from lightning_distill.toy.teacher import folder as parts

    return parts.load_vae(Path(folder)).to(dtype), parts.load_text_encoder(Path(folder)).to(dtype)


def _load_toy(spec: BaseModelSpec, dtype) -> BaseModel:
    from lightning_distill.toy.teacher import folder as parts

    folder = Path(spec.path)
    try:
        vae, text_encoder = _toy_shared(str(folder.resolve()), dtype)
        unet = parts.load_unet(folder, None if spec.style == "base" else spec.style).to(dtype)
    except (OSError, ValueError) as error:
        raise _fail(
            spec, "the toy teacher folder (toy/teacher/folder.py)", str(error).splitlines()[0]
        ) from error
    return BaseModel(spec.name, spec.style, unet, vae, text_encoder, sd15_tokenizer())


LOADERS = {
    "diffusers": _load_diffusers,
    "single_file": _load_single_file,
    "ckpt": _load_single_file,
    "toy": _load_toy,
}


def load_base_model(spec: BaseModelSpec, dtype: torch.dtype = torch.float32) -> BaseModel:
    """Load `spec` from local files, frozen and in eval mode (see the module docstring)."""
    return _frozen(LOADERS[spec.kind](spec, dtype))
