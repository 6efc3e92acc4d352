"""``python -m lightning_distill.data write|stats``: make shards from videos, or count what streams.

write --videos DIR --captions CSV --out DIR [--shard-size N] [--prefix P] [--source S]
    one sample per CSV row (WebVid or video_id,caption); prints a JSON summary with skip counts.
stats --shards PATTERN --frames F --size S [--frame-stride N | --target-fps X] [--num-workers W]
    streams every shard once through the real pipeline; prints {"clips": N, "skipped": {reason: n}}.
generate [hydra overrides]
    teacher data for every pool member (data/generate.py), resumable shard by shard.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["generate"]:  # a Hydra app over the distillation config (data/generate.py)
        from .generate import main as generate_main

        generate_main(argv[1:])
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m lightning_distill.data",
        description="Write video shards, or count what streams from them.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    write = commands.add_parser("write", help="a folder of videos and a caption CSV -> tar shards")
    write.add_argument(
        "--videos", required=True, help="folder searched recursively for <id>.mp4 (or webm, mov, ...)"
    )
    write.add_argument("--captions", required=True, help="CSV: WebVid (videoid,...,name) or video_id,caption")
    write.add_argument("--out", required=True, help="output folder for shards and the manifest")
    write.add_argument("--shard-size", type=int, default=256, help="samples per shard (default 256)")
    write.add_argument("--prefix", default="clips", help="shard file prefix (default clips)")
    write.add_argument("--source", default="webvid", help="the json 'source' field (default webvid)")

    stats = commands.add_parser("stats", help="stream shards once and count clips and skips")
    stats.add_argument("--shards", required=True, help="path, brace pattern, glob, pipe: or fsspec URL")
    stats.add_argument("--frames", type=int, required=True, help="frames per clip")
    stats.add_argument("--size", type=int, required=True, help="square clip side in pixels")
    timing = stats.add_mutually_exclusive_group()
    timing.add_argument("--frame-stride", type=int, default=1, help="keep every n-th frame (default 1)")
    timing.add_argument(
        "--target-fps", type=float, default=None, help="choose the stride per file for this fps"
    )
    stats.add_argument("--batch-size", type=int, default=32)
    stats.add_argument("--num-workers", type=int, default=0)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        # Imported per command: `write` needs no torch, `stats` no lightning; both start faster.
        if args.command == "write":
            from .webvid import write_shards

            result = write_shards(
                args.videos, args.captions, args.out, args.shard_size, args.prefix, args.source
            )
        else:
            from .once import clip_stats

            result = clip_stats(
                args.shards,
                args.frames,
                args.size,
                batch_size=args.batch_size,
                num_workers=args.num_workers,
                frame_stride=args.frame_stride,
                target_fps=args.target_fps,
            )
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
