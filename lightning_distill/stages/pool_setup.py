"""Everything a process needs before its first stage: which pool members it hosts, their base models and
motion UNets, their precomputed latents, and the motion module the chain starts from.

One process hosts every member; with several processes each rank hosts the members `Pool.assign_ranks`
gives it (the paper's table), so per-process memory does not grow with the pool.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from lightning_distill.data.latents import LatentBank, cached_bank, encode_clips, member_shards
from lightning_distill.models.pool import Pool
from lightning_distill.stages.members import Member

log = logging.getLogger("lightning_distill")


def process_rank(cfg: DictConfig) -> tuple[int, int]:
    """(global rank, world size) of this process, from the launcher's environment (torchrun, SLURM, or
    Lightning's own launcher, which re-runs the command with the variables set) and the trainer config."""
    devices = cfg.trainer.get("devices", 1)
    devices = (
        devices if isinstance(devices, int) and devices > 0 else int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    )
    world = int(os.environ.get("WORLD_SIZE", devices * int(cfg.trainer.get("num_nodes", 1))))
    rank = int(
        os.environ.get(
            "RANK", int(os.environ.get("NODE_RANK", 0)) * devices + int(os.environ.get("LOCAL_RANK", 0))
        )
    )
    return rank, world


class PoolDraw:
    """The pool plus a stable base-model index per member (the discriminator's flow embedding reads it)."""

    def __init__(self, pool: Pool):
        self.pool = pool
        self.index = {name: i for i, name in enumerate([*pool.members, *pool.held_out])}

    def draw_from(self, names: list[str], generator: torch.Generator) -> str:
        if len(names) == 1:
            return names[0]
        shares = torch.tensor([self.pool.members[n].share for n in names], dtype=torch.float64)
        return names[int(torch.multinomial(shares, 1, generator=generator))]


@dataclass
class PoolSetup:
    cfg: DictConfig
    pool: PoolDraw
    rank: int
    world_size: int
    hosted: list[str]
    members: dict[str, Member]
    banks: dict[str, LatentBank]

    @classmethod
    def from_config(cls, cfg: DictConfig, run_dir: Path) -> PoolSetup:
        from diffusers import UNetMotionModel

        from lightning_distill.models.loading import load_base_model

        pool = PoolDraw(instantiate(cfg.pool))
        rank, world = process_rank(cfg)
        hosted = pool.pool.assign_ranks(world, cfg.get("ranks_per_node"))[rank]
        log.info("rank %d of %d hosts %s", rank, world, ", ".join(hosted))
        initial = _read_adapter(cfg.teacher.motion_module)
        members, banks = {}, {}
        for name in hosted:
            spec = pool.pool.members[name]
            base = load_base_model(spec)
            unet = UNetMotionModel.from_unet2d(base.unet, initial)
            base.unet = None  # from_unet2d copied the image weights: keep one copy
            members[name] = Member(name, pool.index[name], unet, base, spec.guidance_scale)
            shards = member_shards(cfg.latents.style_shards, spec.style)
            if spec.kind == "toy" and cfg.latents.get("render_toy"):
                _render_toy(shards, spec.style, cfg)
            banks[name] = cached_bank(
                Path(run_dir) / "latents" / f"{name}.safetensors",
                lambda base=base, shards=shards: encode_clips(
                    base, shards, int(cfg.data.frames), int(cfg.data.size), int(cfg.latents.clips_per_member)
                ),
            )
            log.info(
                "member %s: %d clips of latents %s",
                name,
                len(banks[name]),
                tuple(banks[name].latents.shape[1:]),
            )
        return cls(cfg, pool, rank, world, hosted, members, banks)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(F, h, w) of the clips' latents: the discriminator's heads are laid out for it."""
        return tuple(next(iter(self.banks.values())).latents.shape[2:])

    def initial_adapter(self) -> torch.nn.Module:
        return _read_adapter(self.cfg.teacher.motion_module)

    def discriminator_unet(self) -> torch.nn.Module:
        """The AnimateDiff UNet the discriminator's backbone is copied from: the image layers of
        `discriminator.image_layers_from` (SD1.5 in the paper, the toy "SD1.5" in the toy world) with the
        original AnimateDiff motion module (ADL §3.3)."""
        from diffusers import UNetMotionModel

        from lightning_distill.models.loading import load_base_model

        spec = instantiate(self.cfg.discriminator.image_layers_from)
        return UNetMotionModel.from_unet2d(load_base_model(spec).unet, self.initial_adapter())


def _render_toy(shards: str, style: str, cfg: DictConfig) -> None:
    """Render a toy style's clips where its shards are expected, exactly as the toy teacher's training
    rendered them (`latents.render_clips` and `latents.render_seed`: the teacher's clip count and seed),
    so both read the same clips, whatever the run's seed; the run encodes the first
    `latents.clips_per_member` of them."""
    from lightning_distill.toy.shards import ensure_rendered, style_render_seed

    folder = Path(shards).parent
    seed = cfg.latents.get("render_seed")
    ensure_rendered(
        folder, style, int(cfg.latents.get("render_clips") or cfg.latents.clips_per_member),
        style_render_seed(int(cfg.seed if seed is None else seed), style),
        int(cfg.data.frames), int(cfg.data.size),
    )  # fmt: skip


def _read_adapter(path: str) -> torch.nn.Module:
    from lightning_distill.models.motion_module_io import read_motion_module

    return read_motion_module(path).to_motion_adapter().float()
