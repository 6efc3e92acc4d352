"""`python -m lightning_distill.data generate [overrides]`: teacher data for the pool (ADL §3.2).

The teacher (each pool member's image UNet with the AnimateDiff motion module) generates clips from a
prompts file with the paper's sampler (DPM-Solver++, 32 steps, CFG 7.5, no negative prompt) and writes
them as shards through the data writer: per clip its VAE latents (`KEY.latents.npy`, float16), the caption,
the base model and its style, and with `generate.preview=true` an mp4 that the streaming pipeline (and a
person) can read. One folder per member, `gen-NNNNNN.tar`, each shard written whole and renamed into place:
a rerun keeps every finished shard and generates only the missing ones. Clip i uses prompt i (cycling) and
noise index i, so a shard's content does not depend on which shards were made before.

The config is the distillation config (conf/config.yaml) plus its `generate` block:
    python -m lightning_distill.data generate generate.prompts_file=prompts.txt generate.clips_per_member=512
    python -m lightning_distill.data generate world=paper generate.prompts_file=webvid_prompts.txt
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from lightning_distill.atomic import write_bytes_atomic

log = logging.getLogger("lightning_distill.data")
PREFIX = "gen"


def read_prompts(path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"generate.prompts_file={path}: no such file; give a text file with one prompt per line "
            "(WebVid captions for the paper world, `python -m lightning_distill.toy` captions for the toy)"
        )
    prompts = [line.strip() for line in file.read_text().splitlines() if line.strip()]
    if not prompts:
        raise ValueError(f"generate.prompts_file={path} holds no prompt")
    return prompts


def _write_shard(path: Path, records: list[dict]) -> None:
    """Write one complete shard at `path` (a temporary folder beside it, then a rename)."""
    from lightning_distill.data.writer import ShardWriter

    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".gen.") as temporary:
        with ShardWriter(temporary, prefix=PREFIX, shard_size=len(records) + 1) as writer:
            for record in records:
                writer.write(record["key"], record["meta"], mp4=record.get("mp4"), latents=record["latents"])
        os.replace(Path(temporary) / f"{PREFIX}-000000.tar", path)


def generate_member(cfg: DictConfig, name: str, spec, adapter, prompts: list[str], out: Path) -> dict:
    from diffusers import UNetMotionModel

    from lightning_distill.data.format import make_meta
    from lightning_distill.data.video import encode_mp4
    from lightning_distill.diffusion.generate import generate_latents
    from lightning_distill.media import to_uint8_frames
    from lightning_distill.models.loading import load_base_model

    g = cfg.generate
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    total, size = int(g.clips_per_member), int(g.shard_size)
    shards = [folder / f"{PREFIX}-{k:06d}.tar" for k in range((total + size - 1) // size)]
    missing = [k for k, path in enumerate(shards) if not path.exists()]
    log.info("%s: %d of %d shards to generate in %s", name, len(missing), len(shards), folder)
    if missing:
        base = load_base_model(spec)
        unet = UNetMotionModel.from_unet2d(base.unet, adapter).eval()
        base.unet = None
        frames, latent_size = int(cfg.data.frames), int(cfg.data.size) // base.vae_scale_factor
    for k in missing:
        indices = list(range(k * size, min(total, (k + 1) * size)))
        captions = [prompts[i % len(prompts)] for i in indices]
        records = []
        for start in range(0, len(indices), int(g.batch_size)):
            chunk = captions[start : start + int(g.batch_size)]
            latents = generate_latents(
                unet, base, chunk, steps=int(g.steps), sampler=str(g.sampler),
                guidance_scale=float(g.guidance_scale), seed=int(cfg.seed), frames=frames,
                latent_size=latent_size, first_index=indices[start],
            )  # fmt: skip
            videos = base.decode_latents(latents) if g.preview else None
            for j, caption in enumerate(chunk):
                index = indices[start + j]
                meta = make_meta(
                    caption, f"teacher:{name}", float(g.fps), frames, int(cfg.data.size), int(cfg.data.size),
                    base_model=name, style=spec.style, sampler=f"{g.sampler} {g.steps} steps CFG {g.guidance_scale}",
                )  # fmt: skip
                record = {"key": f"{name}_{index:08d}", "meta": meta, "latents": latents[j].half().numpy()}
                if videos is not None:
                    record["mp4"] = encode_mp4(to_uint8_frames(videos[j]), float(g.fps))
                records.append(record)
        _write_shard(shards[k], records)
        log.info("%s: wrote %s (%d clips)", name, shards[k].name, len(records))
    manifest = {"shards": [p.name for p in shards], "samples": total, "generator": name}
    write_bytes_atomic(folder / f"{PREFIX}.manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    return {"folder": str(folder), "shards": len(shards), "generated_now": len(missing)}


def generate_pool(cfg: DictConfig) -> dict:
    from lightning_distill.models.motion_module_io import read_motion_module

    prompts = read_prompts(str(cfg.generate.prompts_file))
    pool = instantiate(cfg.pool)
    adapter = read_motion_module(cfg.teacher.motion_module).to_motion_adapter().float()
    out = Path(cfg.generate.out)
    members = list(cfg.generate.members) if cfg.generate.get("members") else pool.names
    return {name: generate_member(cfg, name, pool.members[name], adapter, prompts, out) for name in members}


def main(argv: list[str]) -> None:
    """Hydra entry over the distillation config; `argv` are the overrides after `generate`."""
    import hydra

    from lightning_distill.config import CONF_DIR

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
    def _main(cfg: DictConfig) -> None:
        print(json.dumps(generate_pool(cfg), indent=2))

    sys.argv = [f"{sys.argv[0]} generate", *argv]
    _main()
