"""What one toy clip shows: the ``ClipSpec``, how to draw one, and the caption <-> spec mapping.

A spec is resolution-free: positions, sizes and the distance travelled are fractions of the frame
width, and the motion spans the whole clip, so the same spec renders the same scene at any frame count
or size. At the defaults (8 frames, 32 px) the shape travels 11-18 px, i.e. 1.6-2.5 px per frame, and
its centre stays at least 0.6 of its extent inside the frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from lightning_distill.toy.world import COLOURS, DIRECTION_VECTORS, MOTIONS, SHAPES, STYLES, check_style

# Ranges of the continuous parameters, as fractions of the frame width (travel: over the whole clip).
EXTENT_RANGE = (0.15, 0.24)
TRAVEL_RANGE = (0.35, 0.55)
ROTATION_RANGE = (-25.0, 25.0)
# The shape's centre keeps this share of its extent inside the frame, so it is never more than ~40% cut.
EDGE_MARGIN = 0.6

_CAPTION = re.compile(r"^\s*an?\s+(?P<colour>\w+)\s+(?P<shape>\w+)\s+moving\s+(?P<motion>\w+)\s*\.?\s*$")


@dataclass(frozen=True)
class ClipSpec:
    """One clip's content and style, plus the continuous parameters that vary inside a caption.

    shape, colour, motion, style: names from ``world``. extent: the shape's half-size as a fraction of
    the frame width. start_x, start_y: the shape's centre at the first frame, fractions of the width from
    the top-left corner. travel: distance moved over the clip, fraction of the width. rotation: degrees
    (squares and triangles). shade: -1..1, a small brightness change of the shape's colour.
    background_seed: seeds the style's per-clip background variation (texture, tint, gradient).
    """

    shape: str
    colour: str
    motion: str
    style: str
    extent: float
    start_x: float
    start_y: float
    travel: float
    rotation: float
    shade: float
    background_seed: int

    def __post_init__(self):
        for name, vocabulary in (
            ("shape", SHAPES),
            ("colour", COLOURS),
            ("motion", MOTIONS),
            ("style", STYLES),
        ):
            value = getattr(self, name)
            if value not in vocabulary:
                raise ValueError(f"ClipSpec: unknown {name} {value!r}; choose one of {', '.join(vocabulary)}")

    def centre_at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre (x, y) as fractions of the width at clip times ``t`` in [0, 1] (0: first frame)."""
        dx, dy = DIRECTION_VECTORS[self.motion]
        return self.start_x + dx * self.travel * t, self.start_y + dy * self.travel * t


def _draw_content(rng: np.random.Generator, shape: str, colour: str, motion: str, style: str) -> ClipSpec:
    extent = float(rng.uniform(*EXTENT_RANGE))
    travel = float(rng.uniform(*TRAVEL_RANGE))
    margin = EDGE_MARGIN * extent
    # Along the motion axis the whole path stays inside [margin, 1 - margin]; across it, anywhere the
    # shape fits whole.
    along = float(rng.uniform(margin + travel, 1.0 - margin))
    across = float(rng.uniform(extent, 1.0 - extent))
    if motion in ("right", "down"):
        along = 1.0 - along
    start_x, start_y = (along, across) if motion in ("left", "right") else (across, along)
    return ClipSpec(
        shape=shape,
        colour=colour,
        motion=motion,
        style=style,
        extent=extent,
        start_x=start_x,
        start_y=start_y,
        travel=travel,
        rotation=float(rng.uniform(*ROTATION_RANGE)),
        shade=float(rng.uniform(-1.0, 1.0)),
        background_seed=int(rng.integers(0, 2**31 - 1)),
    )


def sample_spec(rng: np.random.Generator, style: str | None = None) -> ClipSpec:
    """Draw a spec uniformly over shapes, colours, motions and (unless given) every style, held-out one included."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    colour = COLOURS[rng.integers(len(COLOURS))]
    motion = MOTIONS[rng.integers(len(MOTIONS))]
    style = STYLES[rng.integers(len(STYLES))] if style is None else check_style(style)
    return _draw_content(rng, shape, colour, motion, style)


def parse_caption(caption: str) -> dict[str, str]:
    """``"a red circle moving left"`` -> ``{"shape": "circle", "colour": "red", "motion": "left"}``.

    Case and surrounding whitespace are ignored. A caption outside the toy world raises one error that
    shows the expected form and the vocabulary.
    """
    match = _CAPTION.match(caption.lower()) if isinstance(caption, str) else None
    labels = match.groupdict() if match else {}
    if (
        not match
        or labels["shape"] not in SHAPES
        or labels["colour"] not in COLOURS
        or labels["motion"] not in MOTIONS
    ):
        raise ValueError(
            f"caption {caption!r} is outside the toy world; expected 'a <colour> <shape> moving <motion>' with "
            f"colour in {COLOURS}, shape in {SHAPES}, motion in {MOTIONS}"
        )
    return {"shape": labels["shape"], "colour": labels["colour"], "motion": labels["motion"]}


def spec_from_caption(caption: str, style: str, rng: np.random.Generator) -> ClipSpec:
    """A spec showing what ``caption`` says, in ``style``, with its continuous parameters drawn from ``rng``."""
    labels = parse_caption(caption)
    return _draw_content(rng, labels["shape"], labels["colour"], labels["motion"], check_style(style))


def caption_from(shape: str, colour: str, motion: str) -> str:
    """The plain-English caption of a clip's content (parse_caption reads it back); it never names the style."""
    return f"a {colour} {shape} moving {motion}"


def caption_of(spec: ClipSpec) -> str:
    """The caption of a spec."""
    return caption_from(spec.shape, spec.colour, spec.motion)


def labels_of(spec: ClipSpec) -> dict[str, str]:
    """The true content labels stored in a sample's json: ``{"shape", "colour", "motion"}``."""
    return {"shape": spec.shape, "colour": spec.colour, "motion": spec.motion}
