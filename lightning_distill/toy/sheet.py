"""A PNG contact sheet of the toy world: one row per style, every frame of a few clips, with captions.

It is how a person sees what the judge and the toy base models see (``docs/toy_styles.png``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lightning_distill.atomic import atomic_output
from lightning_distill.toy.render import caption_of, render_clip, sample_spec
from lightning_distill.toy.world import DEFAULT_FRAMES, DEFAULT_SIZE, HELD_OUT_STYLE, STYLES

_LABEL_WIDTH = 110
_CAPTION_HEIGHT = 14
_GAP = 12
_FRAME_GAP = 2


def contact_sheet(
    clips_per_style: int = 2,
    seed: int = 0,
    frames: int = DEFAULT_FRAMES,
    size: int = DEFAULT_SIZE,
    zoom: int = 3,
) -> Image.Image:
    """An RGB image: a row per style, ``clips_per_style`` clips of ``frames`` frames each, zoomed ``zoom`` x."""
    rng = np.random.default_rng(seed)
    tile = size * zoom
    clip_width = frames * (tile + _FRAME_GAP) - _FRAME_GAP
    width = _LABEL_WIDTH + clips_per_style * (clip_width + _GAP)
    row_height = _CAPTION_HEIGHT + tile + _GAP
    sheet = Image.new("RGB", (width, len(STYLES) * row_height + _GAP), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for row, style in enumerate(STYLES):
        top = _GAP + row * row_height
        name = f"{style}\n(held out)" if style == HELD_OUT_STYLE else style
        draw.multiline_text((8, top + _CAPTION_HEIGHT + tile // 3), name, fill=(0, 0, 0))
        for column in range(clips_per_style):
            spec = sample_spec(rng, style)
            left = _LABEL_WIDTH + column * (clip_width + _GAP)
            draw.text((left, top), caption_of(spec), fill=(0, 0, 0))
            for index, frame in enumerate(render_clip(spec, frames, size)):
                image = Image.fromarray(frame).resize((tile, tile), Image.NEAREST)
                sheet.paste(image, (left + index * (tile + _FRAME_GAP), top + _CAPTION_HEIGHT))
    return sheet


def write_contact_sheet(out: str | Path, **kwargs) -> Path:
    """Write ``contact_sheet(**kwargs)`` as a PNG at ``out``, atomically; return the path."""
    with atomic_output(out) as temporary:
        contact_sheet(**kwargs).save(temporary, format="PNG")
    return Path(out)
