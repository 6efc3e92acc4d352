"""The six visual styles: each paints a clip from its ``Geometry`` and plays one toy base model.

Generated clips come out of a tiny VAE after few sampling steps, so they are blurrier than renders:
styles differ in what survives a 1-2 px blur (background palette and layout, gradients, outline
thickness, large-scale texture, glow), and in every style the four shape colours stay far apart in hue.
Per-clip variation of the background (tint, texture, gradient direction, horizon) is drawn from
``spec.background_seed`` so that each style is a distribution, not one picture.

Every painter returns float32 (F, H, W, 3) in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lightning_distill.toy.geometry import Geometry, coverage
from lightning_distill.toy.world import DIRECTION_VECTORS

Colours = dict[str, tuple[float, float, float]]


def _rgb(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def _shape_colour(palette: Colours, geometry: Geometry) -> np.ndarray:
    # A brightness change of up to 8% keeps the four colours apart while the set is not degenerate.
    return np.clip(_rgb(palette[geometry.spec.colour]) * (1.0 + 0.08 * geometry.spec.shade), 0.0, 1.0)


def _over(under: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-composite ``colour`` (3,) or (..., 3) with (F, H, W) ``alpha`` over (F|1, H, W, 3) ``under``."""
    alpha = alpha[..., None]
    return under * (1.0 - alpha) + colour * alpha


def _smooth_noise(rng: np.random.Generator, cells: int, size: int, channels: int = 1) -> np.ndarray:
    """(size, size, channels) noise in [0, 1], smooth over ``size / cells`` px: a texture blur cannot remove."""
    grid = rng.random((cells + 1, cells + 1, channels))
    position = (np.arange(size) + 0.5) / size * cells
    index = np.minimum(position.astype(int), cells - 1)
    frac = position - index
    frac = frac * frac * (3.0 - 2.0 * frac)  # smoothstep hides the grid's seams
    rows = grid[index] * (1 - frac)[:, None, None] + grid[index + 1] * frac[:, None, None]
    return rows[:, index] * (1 - frac)[None, :, None] + rows[:, index + 1] * frac[None, :, None]


def _stripes(geometry: Geometry, period: float, angle_deg: float, phase: float = 0.0) -> np.ndarray:
    """(1, H, W) in [0, 1]: soft parallel lines ``period`` px apart at ``angle_deg``, 1 where a line is."""
    angle = np.deg2rad(angle_deg)
    across = geometry.xs * np.cos(angle) + geometry.ys * np.sin(angle)
    wave = np.cos(2.0 * np.pi * (across / period + phase))
    return np.clip((wave - 0.3) / 0.7, 0.0, 1.0)


FLAT: Colours = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.72, 0.15),
    "blue": (0.1, 0.25, 0.95),
    "yellow": (0.95, 0.85, 0.1),
}


def paint_flat(geometry: Geometry, rng: np.random.Generator) -> np.ndarray:
    """A single flat mid-grey background, a flat fill, no outline: the plain base model."""
    grey = rng.uniform(0.45, 0.72)
    background = _rgb(grey + rng.uniform(-0.04, 0.04, 3)) * np.ones(
        (1, geometry.size, geometry.size, 3), np.float32
    )
    return _over(background, _shape_colour(FLAT, geometry), coverage(geometry.distance()))


TOON: Colours = {
    "red": (0.95, 0.15, 0.15),
    "green": (0.15, 0.8, 0.2),
    "blue": (0.15, 0.35, 1.0),
    "yellow": (1.0, 0.88, 0.1),
}


def paint_toon(geometry: Geometry, rng: np.random.Generator) -> np.ndarray:
    """Cel look: pale sky over sand split by a dark horizon line, saturated fills with a thick black outline."""
    size, unit = geometry.size, geometry.unit
    sky = _rgb((0.7, 0.86, 1.0) + rng.uniform(-0.05, 0.05, 3))
    sand = _rgb((0.98, 0.84, 0.58) + rng.uniform(-0.05, 0.05, 3))
    horizon = rng.uniform(0.55, 0.8) * size
    ys = geometry.ys[..., None]
    ground = np.clip(ys - horizon + 0.5, 0.0, 1.0)
    background = (sky * (1.0 - ground) + sand * ground) * np.ones((1, 1, size, 1), np.float32)
    line = np.clip(1.0 - np.abs(geometry.ys - horizon) / (0.8 * unit), 0.0, 1.0)
    background = _over(background, sand * 0.55, np.broadcast_to(line, (1, size, size)))
    distance = geometry.distance()
    outlined = _over(background, _rgb((0.05, 0.05, 0.05)), coverage(distance - 0.7 * unit))
    return _over(outlined, _shape_colour(TOON, geometry), coverage(distance + 1.5 * unit))


PHOTO: Colours = {
    "red": (0.72, 0.13, 0.1),
    "green": (0.18, 0.55, 0.16),
    "blue": (0.13, 0.24, 0.68),
    "yellow": (0.88, 0.72, 0.14),
}
_EARTH = ((0.46, 0.38, 0.3), (0.5, 0.49, 0.46), (0.42, 0.4, 0.34), (0.58, 0.5, 0.4))


def paint_photo(geometry: Geometry, rng: np.random.Generator) -> np.ndarray:
    """Textured "photo": blotchy earth-toned ground with vignette and grain, a lit shape with a soft shadow."""
    size, unit, frames = geometry.size, geometry.unit, geometry.cx.shape[0]
    base = _rgb(_EARTH[rng.integers(len(_EARTH))])
    blotches = _smooth_noise(rng, int(rng.integers(3, 6)), size, 1) - 0.5
    tint = _smooth_noise(rng, 2, size, 3) - 0.5
    ground = base + 0.45 * blotches + 0.08 * tint
    radius = np.hypot(geometry.xs - size / 2, geometry.ys - size / 2)[0] / (size / 2)
    ground = ground * (1.0 - 0.3 * np.clip(radius - 0.4, 0.0, None))[..., None]
    grain = rng.normal(0.0, 0.025, (frames, size, size, 1))
    background = (ground[None] + grain).astype(np.float32)
    shadow = coverage(geometry.distance(1.8 * unit, 1.8 * unit), softness=3.0 * unit)
    background = background * (1.0 - 0.45 * shadow[..., None])
    x, y = geometry.local()
    # Light from the top-left: brighter there, darker towards the bottom-right.
    light = np.clip(1.0 - 0.3 * (x + y) / (1.4 * geometry.extent), 0.6, 1.35)[..., None]
    lit = np.clip(_shape_colour(PHOTO, geometry) * light, 0.0, 1.0)
    return _over(background, lit, coverage(geometry.distance(), softness=1.3 * unit))


PASTEL: Colours = {
    "red": (0.96, 0.45, 0.47),
    "green": (0.38, 0.8, 0.45),
    "blue": (0.45, 0.55, 0.98),
    "yellow": (0.98, 0.86, 0.3),
}
_PASTEL_GROUNDS = (
    (1.0, 0.86, 0.76),
    (0.88, 0.84, 1.0),
    (0.82, 0.97, 0.9),
    (1.0, 0.85, 0.93),
    (0.82, 0.92, 1.0),
    (1.0, 0.97, 0.82),
)


def paint_pastel(geometry: Geometry, rng: np.random.Generator) -> np.ndarray:
    """A gradient between two pastel tints at a random angle, pale soft-edged shapes."""
    first, second = rng.choice(len(_PASTEL_GROUNDS), size=2, replace=False)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    centred_x, centred_y = geometry.xs / geometry.size - 0.5, geometry.ys / geometry.size - 0.5
    ramp = np.clip(0.5 + (centred_x * np.cos(angle) + centred_y * np.sin(angle)) * 1.2, 0.0, 1.0)[..., None]
    background = _rgb(_PASTEL_GROUNDS[first]) * (1.0 - ramp) + _rgb(_PASTEL_GROUNDS[second]) * ramp
    alpha = coverage(geometry.distance(), softness=2.5 * geometry.unit)
    return _over(background.astype(np.float32), _shape_colour(PASTEL, geometry), alpha)


SKETCH: Colours = {
    "red": (0.85, 0.2, 0.2),
    "green": (0.2, 0.62, 0.25),
    "blue": (0.2, 0.3, 0.85),
    "yellow": (0.95, 0.78, 0.12),
}


def paint_sketch(geometry: Geometry, rng: np.random.Generator) -> np.ndarray:
    """Pencil on paper: warm paper with wide grey hatching, a graphite outline, a colour-pencil hatched fill."""
    size, unit = geometry.size, geometry.unit
    paper = _rgb((0.95, 0.92, 0.85) + rng.uniform(-0.03, 0.03, 3))
    smudge = _smooth_noise(rng, 3, size, 1) - 0.5
    hatching = _stripes(geometry, rng.uniform(5.0, 7.0) * unit, rng.uniform(30.0, 60.0), rng.random())
    background = paper * (1.0 + 0.08 * smudge[None]) - 0.2 * hatching[..., None]
    distance = geometry.distance()
    colour_hatch = _stripes(geometry, 3.0 * unit, rng.uniform(120.0, 150.0), rng.random())
    fill = coverage(distance) * (0.55 + 0.45 * colour_hatch)
    drawn = _over(background.astype(np.float32), _shape_colour(SKETCH, geometry), fill)
    outline = np.clip(1.0 - np.abs(distance) / (0.9 * unit), 0.0, 1.0)
    return _over(drawn, _rgb((0.22, 0.22, 0.25)), 0.85 * outline)


NEON: Colours = {
    "red": (1.0, 0.1, 0.16),
    "green": (0.2, 1.0, 0.3),
    "blue": (0.2, 0.45, 1.0),
    "yellow": (1.0, 0.95, 0.15),
}


def paint_neon(geometry: Geometry, rng: np.random.Generator) -> np.ndarray:
    """Night: near-black navy with a dim violet grid, glowing outlined shapes with a faint fill."""
    unit = geometry.unit
    night = _rgb((0.04, 0.03, 0.12) + rng.uniform(-0.02, 0.03, 3))
    period = rng.uniform(7.0, 10.0) * unit
    grid = np.maximum(
        _stripes(geometry, period, 0.0, rng.random()), _stripes(geometry, period, 90.0, rng.random())
    )
    background = night + _rgb((0.3, 0.08, 0.4)) * (0.5 * grid[..., None])
    distance = geometry.distance()
    tube = np.exp(-((distance / (1.0 * unit)) ** 2))
    glow = np.exp(-np.maximum(distance, 0.0) / (2.5 * unit)) * (distance > 0)
    light = tube + 0.45 * glow + 0.22 * coverage(distance)
    colour = _shape_colour(NEON, geometry)
    lit = background + colour * light[..., None] + 0.35 * (tube**2)[..., None]
    return np.clip(lit, 0.0, 1.0).astype(np.float32)


PALETTES: dict[str, Colours] = {
    "flat": FLAT,
    "toon": TOON,
    "photo": PHOTO,
    "pastel": PASTEL,
    "sketch": SKETCH,
    "neon": NEON,
}

# A motion trail: fading copies of the shape where it was a moment before, as motion blur leaves on a real
# frame. It makes the direction of motion visible in every single frame, so an image model trained on
# frames (the toy "SD1.5") learns to draw "moving left" and its features carry the direction to the motion
# module, as real image models' features carry motion cues (ADL trains only the motion module).
TRAIL = ((1.2, 0.45), (2.4, 0.22))  # (offset in frame-to-frame displacements, opacity)


def add_trail(painted: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Composite the trail under the shape of an already painted clip (F, H, W, 3)."""
    spec, frames = geometry.spec, geometry.cx.shape[0]
    step = spec.travel * geometry.size / max(frames - 1, 1)
    dx, dy = DIRECTION_VECTORS[spec.motion]
    shape = coverage(geometry.distance())
    alpha = np.zeros_like(shape)
    for offset, opacity in TRAIL:
        ghost = coverage(geometry.distance(-dx * offset * step, -dy * offset * step))
        alpha = np.maximum(alpha, opacity * ghost)
    alpha = alpha * (1.0 - shape)
    return _over(painted, _shape_colour(PALETTES[spec.style], geometry), alpha)


PAINTERS: dict[str, Callable[[Geometry, np.random.Generator], np.ndarray]] = {
    "flat": paint_flat,
    "toon": paint_toon,
    "photo": paint_photo,
    "pastel": paint_pastel,
    "sketch": paint_sketch,
    "neon": paint_neon,
}
