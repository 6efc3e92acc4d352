"""Where the shape is in every frame, as signed distances on the pixel grid.

Styles paint from a signed distance field (negative inside, in pixels) rather than from a hard mask, so
that outlines, soft edges, glows and shadows are all one expression each and every edge is anti-aliased.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lightning_distill.toy.spec import ClipSpec

# Areas match a circle of radius = extent: pi e^2 = 4 (0.886 e)^2 = sqrt(3) (1.347 e)^2.
_SQUARE_HALF_SIDE = float(np.sqrt(np.pi) / 2.0)
_TRIANGLE_HALF_SIDE = float(np.sqrt(np.pi / np.sqrt(3.0)))
_SQRT3 = float(np.sqrt(3.0))


def coverage(distance: np.ndarray, softness: float = 1.0) -> np.ndarray:
    """Share of each pixel inside the edge ``distance == 0``, ramped over ``softness`` pixels."""
    return np.clip(0.5 - distance / softness, 0.0, 1.0)


def _box(x: np.ndarray, y: np.ndarray, half: float) -> np.ndarray:
    qx, qy = np.abs(x) - half, np.abs(y) - half
    outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    return outside + np.minimum(np.maximum(qx, qy), 0.0)


def _triangle(x: np.ndarray, y: np.ndarray, half_side: float) -> np.ndarray:
    # Inigo Quilez's exact equilateral-triangle distance, apex up; image y grows downwards, hence -y.
    px, py = np.abs(x) - half_side, -y + half_side / _SQRT3
    fold = px + _SQRT3 * py > 0.0
    px, py = np.where(fold, (px - _SQRT3 * py) / 2.0, px), np.where(fold, (-_SQRT3 * px - py) / 2.0, py)
    px = px - np.clip(px, -2.0 * half_side, 0.0)
    return -np.hypot(px, py) * np.sign(py)


@dataclass(frozen=True)
class Geometry:
    """The pixel grid of one clip and its shape's placement in every frame (all in pixels).

    xs, ys: (1, H, W) pixel-centre coordinates; cx, cy: (F, 1, 1) shape centres; extent: the shape's
    half-size; size: the frame width. ``distance()`` gives the (F, H, W) signed distance to the shape.
    """

    spec: ClipSpec
    xs: np.ndarray
    ys: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    extent: float
    size: int

    @property
    def unit(self) -> float:
        """Pixels per pixel-of-the-default-32-px-frame: styles give widths in 32-px units times this."""
        return self.size / 32.0

    def local(self, dx: float = 0.0, dy: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(F, H, W) coordinates relative to the shape's centre shifted by (dx, dy) px, unrotated."""
        return self.xs - self.cx - dx, self.ys - self.cy - dy

    def distance(self, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
        """(F, H, W) float32 signed distance in pixels to the shape (moved by (dx, dy) px); < 0 inside."""
        x, y = self.local(dx, dy)
        if self.spec.shape == "circle":
            return (np.hypot(x, y) - self.extent).astype(np.float32)
        angle = np.deg2rad(self.spec.rotation)
        cos, sin = np.cos(angle), np.sin(angle)
        x, y = cos * x + sin * y, -sin * x + cos * y
        if self.spec.shape == "square":
            return _box(x, y, _SQUARE_HALF_SIDE * self.extent).astype(np.float32)
        return _triangle(x, y, _TRIANGLE_HALF_SIDE * self.extent).astype(np.float32)


def geometry_of(spec: ClipSpec, frames: int, size: int) -> Geometry:
    """Place ``spec``'s shape on a ``size`` x ``size`` grid for ``frames`` frames spanning the whole motion."""
    if frames < 1 or size < 4:
        raise ValueError(f"toy clips need frames >= 1 and size >= 4, got frames={frames}, size={size}")
    t = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
    cx, cy = spec.centre_at(t)
    coords = np.arange(size, dtype=np.float64) + 0.5
    return Geometry(
        spec=spec,
        xs=coords[None, None, :],
        ys=coords[None, :, None],
        cx=(cx * size)[:, None, None],
        cy=(cy * size)[:, None, None],
        extent=spec.extent * size,
        size=size,
    )
