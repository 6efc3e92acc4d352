"""``python -m lightning_distill.export``: convert a motion module between the diffusers and original layouts.

    python -m lightning_distill.export --input mm_sd_v15_v2.ckpt --layout diffusers --output mm_v2/
    python -m lightning_distill.export --input mm_v2/ --layout original --output mm_v2_comfyui.safetensors
    python -m lightning_distill.export --input student.safetensors --layout diffusers \
        --output animatediff_lightning_4step_diffusers.safetensors

Reads either layout (``.ckpt`` only through ``torch.load(weights_only=True)``); writes the diffusers layout
as one ``.safetensors`` file (``MotionAdapter().load_state_dict(load_file(path))``, as the
AnimateDiff-Lightning model card loads it) or as a folder (``MotionAdapter.from_pretrained(dir)``), and the
original layout as one ``.safetensors`` file (ComfyUI-AnimateDiff-Evolved, and diffusers'
``MotionAdapter.from_single_file``). Tensors are renamed, never recomputed: a round trip is bit-exact.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lightning_distill.models.motion_module_io import (
    LAYOUTS,
    MotionModuleFormatError,
    read_motion_module,
    write_motion_module,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lightning_distill.export",
        description="Convert an AnimateDiff motion module between the diffusers and original key layouts.",
    )
    parser.add_argument("--input", required=True, type=Path, help="motion module file or diffusers folder")
    parser.add_argument("--layout", required=True, choices=LAYOUTS, help="layout to write")
    parser.add_argument(
        "--output",
        required=True,
        type=Path,
        help="a .safetensors file, or (diffusers layout only) a folder for config.json + weights",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="MotionAdapter config.json to use instead of what the input holds or its shapes suggest "
        "(heads and norm groups cannot be read off shapes)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the conversion; returns 0, or exits with status 1 and one line naming the problem."""
    args = build_parser().parse_args(argv)
    try:
        config = json.loads(args.config.read_text()) if args.config else None
        checkpoint = read_motion_module(args.input, config=config)
        if args.output.resolve() == args.input.resolve():
            raise MotionModuleFormatError(f"--output {args.output} is the input; write to a new path")
        written = write_motion_module(checkpoint, args.output, args.layout)
    except (FileNotFoundError, MotionModuleFormatError, json.JSONDecodeError) as err:
        sys.exit(f"lightning_distill.export: error: {err}")
    print(
        f"wrote {written} ({args.layout} layout) from {args.input} ({checkpoint.layout} layout): AnimateDiff "
        f"{checkpoint.version}, {checkpoint.num_parameters():,} parameters, {len(checkpoint.state_dict)} "
        f"diffusers tensors, config from {checkpoint.config_source}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
