"""Rendered toy clips as shards, through the real data path (`data.writer`): what `toy render` writes and
what the toy teacher and distillation read.

A style's folder holds `clips-NNNNNN.tar` shards and `clips.manifest.json`. It is written into a
temporary folder and renamed into place when complete, so a folder with a manifest is always whole; a
folder rendered with other settings (clip count, seed, frames, size) is rendered again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lightning_distill.atomic import atomic_directory
from lightning_distill.data.format import make_meta
from lightning_distill.data.video import encode_mp4
from lightning_distill.data.writer import ShardWriter
from lightning_distill.toy.render import render_clip
from lightning_distill.toy.spec import caption_of, labels_of, sample_spec
from lightning_distill.toy.world import DEFAULT_FPS, STYLES, base_model_of, check_style

log = logging.getLogger("lightning_distill.toy")
PREFIX = "clips"
RENDER_INFO = "render.json"


def style_render_seed(seed: int, style: str) -> int:
    """The seed a render with `seed` draws `style`'s clips from: `seed` plus the style's index in STYLES,
    so the styles' clips differ, and one style rendered alone is that style's folder of a render of all
    (the toy teacher's, distillation's and `toy render`'s renders all come from here)."""
    return int(seed) + STYLES.index(check_style(style))


def render_settings(style: str, clips: int, seed: int, frames: int, size: int) -> dict:
    return {"style": style, "clips": int(clips), "seed": int(seed), "frames": int(frames), "size": int(size)}


def write_rendered(
    folder: Path, style: str, clips: int, seed: int, frames: int, size: int, progress=True
) -> None:
    """Render `clips` clips of `style` into `folder` (which must be empty); clip i from rng([seed, i])."""
    with ShardWriter(folder, prefix=PREFIX, shard_size=256) as writer:
        for index in tqdm(range(clips), desc=f"render {style}", disable=not progress, unit="clip"):
            spec = sample_spec(np.random.default_rng([seed, index]), style)
            meta = make_meta(
                caption_of(spec), "toy", DEFAULT_FPS, frames, size, size,
                base_model=base_model_of(style), style=style, labels=labels_of(spec),
            )  # fmt: skip
            writer.write(
                f"{style}_{index:06d}", meta, mp4=encode_mp4(render_clip(spec, frames, size), DEFAULT_FPS)
            )
    (folder / RENDER_INFO).write_text(json.dumps(render_settings(style, clips, seed, frames, size)) + "\n")


def ensure_rendered(folder: str | Path, style: str, clips: int, seed: int, frames: int, size: int) -> Path:
    """`folder` holding exactly this render of `style`, rendering it (atomically) when it does not."""
    check_style(style)
    folder = Path(folder)
    wanted = render_settings(style, clips, seed, frames, size)
    info = folder / RENDER_INFO
    if info.exists() and json.loads(info.read_text()) == wanted:
        return folder
    log.info("rendering %d %s clips into %s", clips, style, folder)
    with atomic_directory(folder) as temporary:
        write_rendered(temporary, style, clips, seed, frames, size)
    return folder
