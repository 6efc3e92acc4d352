"""MP4 in memory: encode frames to H.264 bytes, and decode a sampled, resized, cropped clip from bytes.

Decoding never touches the disk: the bytes come straight out of a tar member. A clip that starts late
seeks to the keyframe before its first frame; decoding stops as soon as the clip's last frame has been
read; only the kept frames are converted, and the decoder's scaler (libswscale) resizes while it
converts to RGB. So a 16-frame clip out of a 300-frame video costs the decode of one GOP's worth of
frames plus the clip's span, and 16 conversions, not 300.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

# libx264 constant-rate-factor for encode_mp4: 0 is lossless (and needs yuv444, which many players
# refuse); 4 keeps the toy world's flat colours within a few levels while staying yuv420p.
_CRF = 4


class ClipError(Exception):
    """A clip that cannot be sampled; ``reason`` is its skip-count name."""

    reason = "undecodable_video"


class UndecodableVideo(ClipError):
    reason = "undecodable_video"


class TooShort(ClipError):
    reason = "too_short"


def encode_mp4(frames: np.ndarray, fps: float, *, keyframe_every: int | None = None) -> bytes:
    """Encode frames to near-lossless H.264 MP4 bytes (libx264, yuv420p, crf 4).

    Args:
        frames: uint8 array (F, H, W, 3), RGB; H and W must be even (yuv420p halves the chroma planes).
        fps: frames per second stored in the file (> 0).
        keyframe_every: the GOP length in frames; None keeps x264's default (250). Short GOPs make
            random-start decoding cheaper (a seek lands on a keyframe) at some cost in file size.

    Returns:
        The bytes of an MP4 file with one video stream of F frames.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(
            f"encode_mp4 needs uint8 frames shaped (F, H, W, 3) with F >= 1, got {frames.dtype} {frames.shape}"
        )
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(
            f"encode_mp4: yuv420p needs even sizes, got {width}x{height}; crop or pad by one pixel"
        )
    if not fps > 0:
        raise ValueError(f"encode_mp4: fps must be positive, got {fps!r}")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(_CRF), "preset": "fast"}
        if keyframe_every is not None:
            stream.options = {**stream.options, "g": str(keyframe_every)}
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


@dataclass(frozen=True)
class ClipSpec:
    """How to cut one clip out of a video.

    frames: number of frames in the clip. size: output side S in pixels (the shorter side is resized to
    S, then an S x S square is cropped). frame_stride: keep every n-th frame. target_fps: if set, the
    stride is chosen per file as round(file_fps / target_fps) (at least 1), overriding frame_stride.
    random_start: draw the first frame uniformly among those that leave room for the clip (else frame 0).
    crop: "center" or "random". interpolation: the scaler's filter (PyAV name, e.g. "AREA", "BILINEAR").
    """

    frames: int
    size: int
    frame_stride: int = 1
    target_fps: float | None = None
    random_start: bool = False
    crop: str = "center"
    interpolation: str = "AREA"

    def __post_init__(self):
        if self.frames < 1 or self.size < 1 or self.frame_stride < 1:
            raise ValueError(f"ClipSpec: frames, size and frame_stride must be >= 1, got {self}")
        if self.target_fps is not None and not self.target_fps > 0:
            raise ValueError(f"ClipSpec: target_fps must be positive or None, got {self.target_fps}")
        if self.crop not in ("center", "random"):
            raise ValueError(f"ClipSpec: crop must be 'center' or 'random', got {self.crop!r}")

    def stride_for(self, fps: float) -> int:
        """The frame stride for a file recorded at ``fps`` frames per second."""
        if self.target_fps is None or not fps > 0:
            return self.frame_stride
        return max(1, round(fps / self.target_fps))


def frame_rgb(frame: av.VideoFrame, **reformat) -> np.ndarray:
    """A decoded frame as (H, W, 3) uint8 RGB, reformatted (`width`, `height`, `interpolation`) in this thread.

    PyAV >= 17 scales with a pool of swscale slice threads by default and keeps the context; a DataLoader
    worker forked from a process that had decoded inherits that pool without its threads, and hangs for
    good freeing it (seen in CI: both test workers stuck in `avpriv_slicethread_free`). One thread per
    frame is also the right size here: the workers are the parallelism.
    """
    return frame.to_ndarray(format="rgb24", threads=1, **reformat)


def _resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the shorter side equal to ``size`` and the aspect ratio kept."""
    scale = size / min(width, height)
    return max(size, round(width * scale)), max(size, round(height * scale))


def decode_clip(data: bytes, spec: ClipSpec, rng: np.random.Generator | None = None) -> np.ndarray:
    """Decode one clip from MP4 bytes.

    Args:
        data: the bytes of a video file (any container and codec FFmpeg reads).
        spec: frames, stride, start, size and crop of the clip.
        rng: source of the random start and random crop offset; needed only when either is random.

    Returns:
        uint8 array (F, S, S, 3), RGB, F = spec.frames, S = spec.size.

    Raises:
        UndecodableVideo: the bytes are not a readable video (garbage, truncated, no video stream).
        TooShort: the video has fewer frames than the clip spans at its stride.
    """
    if (spec.random_start or spec.crop == "random") and rng is None:
        raise ValueError("decode_clip: a random start or crop needs an rng")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as error:
        raise UndecodableVideo(f"cannot open: {error}") from error
    with container:
        if not container.streams.video:
            raise UndecodableVideo("no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        stride = spec.stride_for(fps)
        span = (spec.frames - 1) * stride + 1
        total = stream.frames  # from the container's index; 0 when the container does not say
        if total and total < span:
            raise TooShort(f"{total} frames, the clip spans {span} ({spec.frames} at stride {stride})")
        start = 0
        if spec.random_start and total:
            start = int(rng.integers(0, total - span + 1))
        try:
            kept = _decode_span(container, stream, start, stride, spec, rng)
        except (av.FFmpegError, ValueError, OSError) as error:
            raise UndecodableVideo(f"decode failed: {error}") from error
    if not kept:
        raise UndecodableVideo("no frame decodes")
    if len(kept) < spec.frames:
        raise TooShort(f"{len(kept)} of {spec.frames} frames decoded from frame {start} at stride {stride}")
    return np.stack(kept)


def _decode_span(container, stream, start: int, stride: int, spec: ClipSpec, rng) -> list[np.ndarray]:
    """Frames start, start+stride, ... as (S, S, 3) uint8 until spec.frames are kept or the file ends.

    A clip that starts late seeks to the keyframe before it and numbers frames by their timestamps
    (exact for the constant frame rates of WebVid and rendered clips); from frame 0 it just counts.
    """
    fps = float(stream.average_rate or stream.guessed_rate or 0)
    origin = stream.start_time or 0
    seeking = start > 0 and fps > 0 and stream.time_base is not None
    if seeking:
        container.seek(origin + int(start / fps / stream.time_base), stream=stream, backward=True)
    kept: list[np.ndarray] = []
    geometry = None
    for count, frame in enumerate(container.decode(stream)):
        index = count
        if seeking:
            if frame.pts is None:
                raise UndecodableVideo("frames carry no timestamps after a seek")
            index = round(float((frame.pts - origin) * stream.time_base) * fps)
        if index < start or (index - start) % stride:
            continue
        if geometry is None:
            geometry = _crop_geometry(frame.width, frame.height, spec, rng)
        width, height, left, top = geometry
        image = frame_rgb(frame, width=width, height=height, interpolation=spec.interpolation)
        kept.append(image[top : top + spec.size, left : left + spec.size])
        if len(kept) == spec.frames:
            break
    return kept


def _crop_geometry(width: int, height: int, spec: ClipSpec, rng) -> tuple[int, int, int, int]:
    """(resized width, resized height, crop left, crop top), one choice for every frame of the clip."""
    out_w, out_h = _resized_size(width, height, spec.size)
    if spec.crop == "random":
        return (
            out_w,
            out_h,
            int(rng.integers(0, out_w - spec.size + 1)),
            int(rng.integers(0, out_h - spec.size + 1)),
        )
    return out_w, out_h, (out_w - spec.size) // 2, (out_h - spec.size) // 2
