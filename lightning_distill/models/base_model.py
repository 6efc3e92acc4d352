"""What a base model is, as config: an SD1.5-family image model (UNet, VAE, text encoder + tokenizer,
schedule) that the shared motion module is put on. Loading the weights is `models.loading`'s job;
a spec is cheap, touches no file, and can be built for every pool member on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("diffusers", "single_file", "ckpt", "toy")


@dataclass(frozen=True)
class BaseModelSpec:
    """One base model.

    kind:
      diffusers    `path` is a local diffusers folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/)
      single_file  `path` is one SD1.5 `.safetensors` checkpoint; `config_dir` a local diffusers folder
                   holding only the configs and tokenizer (or `original_config` the v1-inference.yaml)
      ckpt         like single_file, for a pickled `.ckpt` (read only with weights_only=True)
      toy          `path` is a toy base model of the toy world (its style's image UNet + the shared
                   toy VAE and text encoder)
    style:   the data its clips come from (ADL pools generated data per style: realistic, anime; SD1.5
             trains on real WebVid clips); in the toy world, the toy style.
    share:   its share of every global batch, relative to the other members of the pool.
    guidance_scale: the CFG scale its teacher is distilled at in the guided MSE stage, where its model card
             recommends another than the recipe's (community base models state their own; the paper runs
             every member at 7.5); None: the recipe's `recipe.mse.guidance_scale`. Data generation and the
             AnimateLCM-style baseline keep their own single scale.
    """

    name: str
    kind: str
    path: str
    style: str
    share: float = 1.0
    config_dir: str | None = None
    original_config: str | None = None
    published: str = ""
    guidance_scale: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"base model '{self.name}': kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not self.share > 0:
            raise ValueError(f"base model '{self.name}': share must be positive, got {self.share}")
        if self.guidance_scale is not None and not self.guidance_scale >= 1:
            raise ValueError(
                f"base model '{self.name}': guidance_scale must be at least 1 (1 is no guidance), "
                f"got {self.guidance_scale}; null takes the recipe's"
            )
