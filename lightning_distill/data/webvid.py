"""A folder of video files plus a WebVid-style caption CSV -> shards (``python -m lightning_distill.data write``).

CSV layouts accepted:
  WebVid:  videoid,contentUrl,duration,page_dir,name   (the caption is ``name``)
  plain:   video_id,caption
Videos are found anywhere under the folder by file name: ``<id>.<ext>`` (WebVid downloads keep the id
as the file name, often under ``page_dir/``). MP4 files are stored as they are; other containers (webm,
mov, mkv, avi) are re-encoded with ``video.encode_mp4`` so that every shard member is an MP4.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from pathlib import Path

import av
import numpy as np

from .format import check_key, make_meta
from .video import encode_mp4, frame_rgb
from .writer import ShardWriter

logger = logging.getLogger("lightning_distill.data")

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi")
WEBVID_COLUMNS = ("videoid", "contentUrl", "duration", "page_dir", "name")
PLAIN_COLUMNS = ("video_id", "caption")


def read_captions(csv_path: str | Path) -> list[dict]:
    """Rows of a caption CSV as dicts {"id", "caption", "extra"} (extra: the other WebVid fields)."""
    with open(csv_path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        header = [name.strip() for name in reader.fieldnames or []]
        reader.fieldnames = header
        if set(WEBVID_COLUMNS) <= set(header):
            id_column, caption_column = "videoid", "name"
        elif set(PLAIN_COLUMNS) <= set(header):
            id_column, caption_column = "video_id", "caption"
        else:
            missing_webvid = [name for name in WEBVID_COLUMNS if name not in header]
            missing_plain = [name for name in PLAIN_COLUMNS if name not in header]
            raise ValueError(
                f"{csv_path}: header {header} fits no known caption CSV: a WebVid CSV lacks {missing_webvid}, "
                f"a plain CSV lacks {missing_plain}"
            )
        rows = []
        for row in reader:
            extra = {}
            if id_column == "videoid":
                extra = {"url": row.get("contentUrl", ""), "page_dir": row.get("page_dir", "")}
                if row.get("duration"):
                    extra["duration"] = row["duration"]
            rows.append(
                {
                    "id": (row.get(id_column) or "").strip(),
                    "caption": row.get(caption_column) or "",
                    "extra": extra,
                }
            )
    return rows


def index_videos(videos_dir: str | Path) -> dict[str, Path]:
    """{file stem: path} of every video file under ``videos_dir`` (first found wins, in sorted order)."""
    root = Path(videos_dir)
    if not root.is_dir():
        raise ValueError(f"--videos {videos_dir}: not a folder")
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            if path.stem in found:
                logger.warning(
                    "two videos named %s: using %s, ignoring %s", path.stem, found[path.stem], path
                )
                continue
            found[path.stem] = path
    return found


def probe(data: bytes) -> dict:
    """{"fps", "frames", "width", "height"} of a video's first stream.

    Raises av.FFmpegError, ValueError or StopIteration when the bytes are not a readable video. The frame count comes from the container when it says, else from counting packets (no decode); one
    frame is decoded either way, so a file that opens but does not decode is caught here, not in training.
    """
    with av.open(io.BytesIO(data)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        width, height = stream.codec_context.width, stream.codec_context.height
        frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        container.seek(0)
        next(container.decode(stream))
    # A stream that states no rate is rare; 25 fps is the PAL rate most WebVid clips use.
    fps = float(rate) if rate else 25.0
    if frames < 1:
        raise ValueError("no frame packets")
    return {"fps": fps, "frames": int(frames), "width": width, "height": height}


def _valid_key(key: str) -> bool:
    try:
        check_key(key)
    except ValueError:
        return False
    return True


def _load(path: Path) -> tuple[str | None, str, bytes, dict]:
    """(skip reason or None, detail, mp4 bytes, probe of the mp4) for one video file."""
    data = path.read_bytes()
    try:
        info = probe(data)
        if path.suffix.lower() != ".mp4":
            with av.open(io.BytesIO(data)) as container:
                frames = np.stack([frame_rgb(frame) for frame in container.decode(video=0)])
            height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2  # yuv420p needs even sides
            data = encode_mp4(frames[:, :height, :width], info["fps"])
            info = probe(data)
    except (av.FFmpegError, ValueError, StopIteration) as error:
        return "undecodable_video", f"{path} ({type(error).__name__}: {error})", b"", {}
    return None, "", data, info


def write_shards(
    videos_dir: str | Path,
    captions_csv: str | Path,
    out_dir: str | Path,
    shard_size: int = 256,
    prefix: str = "clips",
    source: str = "webvid",
) -> dict:
    """Write one sample per CSV row whose video is found, decodes, and has a caption.

    Returns:
        {"written": n, "shards": [...], "pattern": ..., "skipped": {reason: count}}. Rows are counted,
        logged and not written when: missing_caption (empty caption), missing_video (no file),
        undecodable_video, duplicate_id (the id repeats), invalid_id (cannot be a sample key).
    """
    rows = read_captions(captions_csv)
    videos = index_videos(videos_dir)
    skipped: Counter[str] = Counter()
    written: set[str] = set()
    with ShardWriter(out_dir, prefix=prefix, shard_size=shard_size) as writer:
        for row in rows:
            key = row["id"].replace(".", "_").replace("/", "_")
            path = videos.get(row["id"])
            if not row["caption"].strip():
                reason, detail = "missing_caption", f"csv row {row['id'] or '<empty id>'}"
            elif path is None:
                reason, detail = "missing_video", f"no file {row['id']}.* under {videos_dir}"
            elif key in written:
                reason, detail = "duplicate_id", f"csv row {row['id']} repeats an earlier row"
            elif not _valid_key(key):
                reason, detail = (
                    "invalid_id",
                    f"csv row {row['id']!r} cannot be a sample key (starts with '__')",
                )
            else:
                reason, detail, mp4, info = _load(path)
            if reason is not None:
                skipped[reason] += 1
                logger.warning("skipped %s: %s", reason, detail)
                continue
            meta = make_meta(caption=row["caption"].strip(), source=source, **info, **row["extra"])
            writer.write(key, meta, mp4)
            written.add(key)
        manifest = writer.close()
    return {
        "written": manifest["samples"],
        "shards": [shard["name"] for shard in manifest["shards"]],
        "pattern": manifest["pattern"],
        "skipped": dict(sorted(skipped.items())),
    }
