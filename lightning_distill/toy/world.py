"""The toy world's vocabulary and default clip geometry: the one place these names and numbers live.

Every clip shows one shape of one colour moving in one direction, over a background drawn in one visual
*style*. Each style plays one toy **base model** (a real base model carries its style implicitly, so the
caption never names it). ``HELD_OUT_STYLE`` is kept out of every training pool, to measure how the
distilled motion module generalises to a base model it never saw, as the paper does with DreamShaper
and DynaVision.
"""

from __future__ import annotations

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow")
# A caption says "moving <motion>"; the label stores the bare direction.
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down")
# Each direction as a unit step (dx, dy) in image coordinates (x right, y down): how a clip moves its shape
# and lays its trail, and how a drawn clip's path is checked against its caption.
DIRECTION_VECTORS: dict[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
}
# The direction a clip played backwards moves in.
OPPOSITE_MOTION: dict[str, str] = {
    motion: next(other for other, (ox, oy) in DIRECTION_VECTORS.items() if (ox, oy) == (-dx, -dy))
    for motion, (dx, dy) in DIRECTION_VECTORS.items()
}
STYLES: tuple[str, ...] = ("flat", "toon", "photo", "pastel", "sketch", "neon")

# Pastel sits between the others (soft edges like photo's shading, flat fills like flat, a gradient
# background of its own), so a pool of the other five has something to generalise from, as DreamShaper
# sits between the realistic and anime models of the paper's pool.
HELD_OUT_STYLE: str = "pastel"
SEEN_STYLES: tuple[str, ...] = tuple(style for style in STYLES if style != HELD_OUT_STYLE)

# 8 frames of 32x32 at 8 fps: small enough that the toy teacher (a tiny SD1.5-architecture UNet per
# style plus a tiny motion module) trains in under 90 minutes on a 2-core CPU, large enough that a shape
# moving >= 1.5 px per frame is unmistakable and the styles differ after a 1-2 px blur.
DEFAULT_FRAMES: int = 8
DEFAULT_SIZE: int = 32
DEFAULT_FPS: int = 8

ATTRIBUTES: tuple[str, ...] = ("shape", "colour", "motion")
VOCABULARY: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": COLOURS,
    "motion": MOTIONS,
    "style": STYLES,
}


def base_model_of(style: str) -> str:
    """The toy base-model id of a style, as shard metadata and ``conf/base_model/toy_<style>.yaml`` spell it."""
    check_style(style)
    return f"toy_{style}"


def check_style(style: str) -> str:
    """Return ``style`` if it is one of ``STYLES``; otherwise raise one error that lists the valid ones."""
    if style not in STYLES:
        raise ValueError(f"unknown toy style {style!r}; choose one of {', '.join(STYLES)}")
    return style
