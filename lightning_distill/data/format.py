"""The shard format: the one place it is documented and versioned.

A shard is an uncompressed POSIX tar file named ``<prefix>-NNNNNN.tar`` (``.tar.gz`` also reads). Its
members are grouped into samples by *key*, the member name up to its first dot, and the members of one
sample are stored next to each other (the WebDataset convention, so any WebDataset reader can stream it):

    KEY.json        required. UTF-8 JSON object, see ``make_meta`` for the fields.
    KEY.mp4         the clip: H.264 in MP4 (``video.encode_mp4`` writes near-lossless yuv420p).
                    Absent for samples that carry only precomputed arrays.
    KEY.<name>.npy  optional arrays (``latents``, ...), written with ``np.save(allow_pickle=False)``.

A key contains no dot and no slash (the dot would split it, the slash would make it a path). Next to the
shards the writer puts ``<prefix>.manifest.json``:
``{"format": FORMAT, "shards": [{"name": ..., "samples": n}, ...], "samples": total, "pattern": ...}``,
where ``pattern`` is a brace pattern over the shard names that ``--shards`` accepts.

Versioning: ``FORMAT`` is ``"lightning_distill.shard/<major>"``. A reader accepts every major up to its
own and json without a ``format`` field (shards from other WebDataset tools with a ``caption``); a
change that an older reader would misread bumps the major. Version 1 is the first.
"""

from __future__ import annotations

import math
from typing import Any

FORMAT = "lightning_distill.shard/1"
FORMAT_FAMILY, _, _major = FORMAT.rpartition("/")
FORMAT_MAJOR = int(_major)

# Fields every sample's json carries, with the type each must have.
REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "caption": str,
    "source": str,
    "fps": (int, float),
    "frames": int,
    "width": int,
    "height": int,
}


def make_meta(
    caption: str,
    source: str,
    fps: float,
    frames: int,
    width: int,
    height: int,
    base_model: str | None = None,
    style: str | None = None,
    labels: dict | None = None,
    **extra: Any,
) -> dict:
    """Build one sample's json object.

    Args:
        caption: the prompt-like text describing the clip; must not be empty.
        source: where the clip came from ("webvid", "toy", a file name, ...).
        fps: frames per second of the stored mp4 (> 0).
        frames: number of frames in the stored mp4 (> 0).
        width, height: pixel size of the stored mp4.
        base_model: optional tag, the base model that generated the clip (teacher-generated data).
        style: optional tag, the visual style (the toy world's base-model identity).
        labels: optional dict of ground-truth labels (the toy world's shape, colour, motion).
        **extra: further JSON-serialisable fields kept verbatim (e.g. WebVid's ``page_dir``, ``duration``).

    Returns:
        A dict with ``format`` set to ``FORMAT`` and the optional tags present only when given.
    """
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError(f"make_meta: caption must be a non-empty string, got {caption!r}")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"make_meta: fps must be a positive number, got {fps!r}")
    for name, value in (("frames", frames), ("width", width), ("height", height)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"make_meta: {name} must be a positive int, got {value!r}")
    reserved = set(REQUIRED_FIELDS) | {"format", "base_model", "style", "labels"}
    clash = sorted(reserved & set(extra))
    if clash:
        raise ValueError(f"make_meta: extra fields {clash} clash with the format's own fields; rename them")
    meta: dict[str, Any] = {
        "format": FORMAT,
        "caption": caption,
        "source": str(source),
        "fps": float(fps),
        "frames": frames,
        "width": width,
        "height": height,
    }
    if base_model is not None:
        meta["base_model"] = str(base_model)
    if style is not None:
        meta["style"] = str(style)
    if labels is not None:
        meta["labels"] = dict(labels)
    meta.update(extra)
    return meta


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid sample key, else raise ValueError saying how to fix it."""
    if not isinstance(key, str) or not key or "." in key or "/" in key or key.startswith("__"):
        raise ValueError(
            f"sample key {key!r} is not valid: it must be a non-empty string without '.' or '/' and must "
            "not start with '__' (replace dots, e.g. key.replace('.', '_'))"
        )
    return key


def supported_format(meta: dict) -> bool:
    """True when this reader understands ``meta``: no ``format`` field, or our family at a major <= ours."""
    tag = meta.get("format")
    if tag is None:
        return True
    family, _, major = str(tag).rpartition("/")
    return family == FORMAT_FAMILY and major.isdigit() and int(major) <= FORMAT_MAJOR
