"""`python -m lightning_distill.toy {render,score,train-judge,scale,sheet,direction}`: the toy world from the shell.

render       rendered clips as shards, through the data writer (one folder per style with --style all)
score        the toy metrics of clips in shards (prompt accuracy, style fidelity, toy-FVD) as JSON
train-judge  train the judge and write its weights and measured accuracies
scale        what toy-FVD numbers mean: real against real, through the teacher's VAE, blurred, noise
sheet        a PNG contact sheet of every style
direction    where a toy teacher loses the caption's motion direction (toy/teacher/direction.py)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lightning_distill.toy.world import DEFAULT_FRAMES, DEFAULT_SIZE, STYLES


def _render(args) -> dict:
    from lightning_distill.toy.shards import ensure_rendered, style_render_seed

    styles = list(STYLES) if args.style == "all" else [args.style]
    written = {}
    for style in styles:
        folder = Path(args.out) / style if args.style == "all" else Path(args.out)
        ensure_rendered(
            folder, style, args.clips, style_render_seed(args.seed, style), args.frames, args.size
        )
        written[style] = str(folder)
    return {"clips_per_style": args.clips, "folders": written}


def _score(args) -> dict:
    import torch

    from lightning_distill.data.once import iterate_once
    from lightning_distill.toy.judge import load_judge
    from lightning_distill.toy.metrics import toy_metrics

    judge = load_judge(args.judge, frames=args.frames, size=args.size)

    def read(pattern: str):
        videos, captions, styles, skipped = [], [], [], {}
        for batch in iterate_once(pattern, judge.frames, judge.size, batch_size=128):
            videos.append(batch["video"])
            captions += batch["caption"]
            styles += [args.style or style for style in batch["style"]]
            for reason, count in batch["skipped"].items():
                skipped[reason] = skipped.get(reason, 0) + count
        if not captions:
            sys.exit(f"lightning_distill.toy score: no decodable clip in {pattern} (skipped: {skipped})")
        if "" in styles:
            sys.exit("lightning_distill.toy score: clips without a style tag; pass --style STYLE")
        return torch.cat(videos), captions, styles, skipped

    videos, captions, styles, skipped = read(args.shards)
    reference = read(args.reference)[0] if args.reference else None
    by_style = {}
    for style in sorted(set(styles)):
        index = [i for i, s in enumerate(styles) if s == style]
        by_style[style] = toy_metrics(
            videos[index], [captions[i] for i in index], style, judge,
            reference=reference[index] if reference is not None else None,
        )  # fmt: skip
    overall = toy_metrics(videos, captions, styles, judge, reference=reference)
    return {"overall": overall, "by_style": by_style, "skipped": skipped}


def _train_judge(args) -> dict:
    from lightning_distill.toy.judge_training import train_judge

    command = "python -m lightning_distill.toy " + " ".join(sys.argv[1:])
    return train_judge(
        args.out, seed=args.seed, steps=args.steps, frames=args.frames, size=args.size, command=command
    )


def _teacher_folder(args) -> Path:
    """The toy teacher folder a command was pointed at with --teacher, or the shipped one."""
    from lightning_distill.toy.teacher import folder as parts

    return Path(args.teacher) if args.teacher else parts.SHIPPED


def _scale(args) -> dict:
    """What toy-FVD numbers mean: real vs independent real, vs real passed through a toy teacher's VAE
    (what a latent model that draws exactly the encoder's latents would score), vs blurred real, vs noise,
    per style."""
    import torch

    from lightning_distill.models.base_model import BaseModelSpec
    from lightning_distill.models.loading import load_base_model
    from lightning_distill.toy.augment import gaussian_blur
    from lightning_distill.toy.judge import load_judge
    from lightning_distill.toy.metrics import REFERENCE_SEED, toy_metrics, toy_prompts
    from lightning_distill.toy.render import render_batch
    from lightning_distill.toy.teacher import folder as parts
    from lightning_distill.toy.world import base_model_of

    judge = load_judge(args.judge, frames=args.frames, size=args.size)
    prompts = toy_prompts(args.clips, args.seed)
    folder = _teacher_folder(args)
    # Every toy base model shares the teacher's VAE; any style's base model encodes and decodes as the
    # samplers and the latent cache do (posterior mean in, the base model's own decode out).
    any_style = parts.styles_in(folder)[0]
    base = load_base_model(BaseModelSpec(base_model_of(any_style), "toy", str(folder), any_style))
    rows = {}
    for style in STYLES:
        real = render_batch(prompts, style, args.seed + 1, args.frames, args.size)
        through_vae = base.decode_latents(base.encode_video(real))
        blurred = gaussian_blur(real, torch.full((len(prompts),), 1.5))
        noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(args.seed)) * 2 - 1
        # The renders every row is compared with (toy_metrics' default), made once per style.
        reference = render_batch(prompts, style, REFERENCE_SEED, judge.frames, judge.size)
        rows[style] = {
            name: {
                k: round(v, 4)
                for k, v in toy_metrics(video, prompts, style, judge, reference=reference).items()
                if k in KEYS
            }
            for name, video in (
                ("independent_real", real),
                ("teacher_vae", through_vae),
                ("blurred_1.5px", blurred),
                ("uniform_noise", noise),
            )
        }
    return {"clips_per_style": args.clips, "seed": args.seed, "teacher": str(folder), "by_style": rows}


KEYS = ("prompt_accuracy", "style_fidelity", "toy_fvd")


def _sheet(args) -> dict:
    from lightning_distill.toy.sheet import write_contact_sheet

    return {"sheet": str(write_contact_sheet(args.out, seed=args.seed, frames=args.frames, size=args.size))}


def _direction(args) -> dict:
    from diffusers import UNetMotionModel

    from lightning_distill.diffusion.generate import generate
    from lightning_distill.diffusion.samplers import motion_unet_denoiser
    from lightning_distill.models.base_model import BaseModelSpec
    from lightning_distill.models.loading import load_base_model
    from lightning_distill.toy.evaluate import TEACHER_FULL
    from lightning_distill.toy.metrics import toy_prompts
    from lightning_distill.toy.models import build_motion_adapter
    from lightning_distill.toy.render import render_batch
    from lightning_distill.toy.teacher import direction
    from lightning_distill.toy.teacher import folder as parts
    from lightning_distill.toy.world import MOTIONS, base_model_of

    folder = _teacher_folder(args)
    base = load_base_model(BaseModelSpec(base_model_of(args.style), "toy", str(folder), args.style))
    captions = toy_prompts(args.clips, args.seed)
    latents = base.encode_video(render_batch(captions, args.style, args.seed + 1, args.frames, args.size))
    models = {
        "teacher": parts.load_motion_adapter(folder),
        # The identity motion module: the image model frame by frame, what the motion module starts from.
        "image_only": build_motion_adapter(args.seed),
    }
    report = {"teacher": str(folder), "style": args.style, "clips": args.clips, "seed": args.seed}
    states = base.encode_prompts(captions)
    # Paths and trails are found by saturation, which only flat's grey background allows.
    flat = args.style == "flat"
    drawn_captions = toy_prompts(args.drawn_clips, args.seed + 2) if flat else []
    same_noise_captions = toy_prompts(args.same_noise_clips, args.seed + 5) if flat else []
    committed_captions = toy_prompts(args.committed_clips, args.seed + 6) if flat else []
    if committed_captions:
        committed_latents = base.encode_video(
            render_batch(committed_captions, "flat", args.seed + 4, args.frames, args.size)
        )

    def full_sampler(unet, prompts: list[str], seed: int):
        return generate(
            unet, base, prompts, seed=seed, frames=args.frames, latent_size=args.size // base.vae_scale_factor,
            progress=False, **TEACHER_FULL,
        )  # fmt: skip

    for name, adapter in models.items():
        unet = UNetMotionModel.from_unet2d(base.unet, adapter).eval()
        report[name] = {
            "readable_at_t": args.probe_timestep,
            "readable": direction.readable(unet, latents, captions, states, args.probe_timestep, args.seed),
            "relied_on": direction.relied_on(
                unet, latents, base.encode_prompts, captions, args.timesteps, args.seed
            ),
        }
        if drawn_captions:
            report[name]["drawn"] = direction.drawn(
                full_sampler(unet, drawn_captions, args.seed), drawn_captions
            )
        if same_noise_captions:
            # One seed for every direction (not drawn's): clip k of each comes from the same noise.
            by_motion = {
                motion: full_sampler(
                    unet, [direction.with_motion(c, motion) for c in same_noise_captions], args.seed + 5
                )
                for motion in MOTIONS
            }
            report[name]["same_noise_paths"] = direction.same_noise_paths(by_motion)
        if committed_captions:
            report[name]["committed"] = direction.committed(
                motion_unet_denoiser(unet), committed_latents, committed_captions, base.encode_prompts,
                base.decode_latents, args.committed_timesteps, args.seed,
            )  # fmt: skip
    report["worth"] = direction.worth(latents, captions)
    if drawn_captions:
        real = render_batch(drawn_captions, "flat", args.seed + 3, args.frames, args.size)
        report["real_drawn"] = direction.drawn(real, drawn_captions)
    return report


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m lightning_distill.toy", description=__doc__.split("\n")[0])
    commands = root.add_subparsers(dest="command", required=True)

    def geometry(sub):
        sub.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
        sub.add_argument("--size", type=int, default=DEFAULT_SIZE)
        sub.add_argument("--seed", type=int, default=0)

    render = commands.add_parser("render", help="render clips into shards")
    render.add_argument("--style", required=True, choices=[*STYLES, "all"])
    render.add_argument("--clips", type=int, required=True, help="clips per style")
    render.add_argument("--out", required=True, help="folder (with --style all: one subfolder per style)")
    geometry(render)
    score = commands.add_parser("score", help="toy metrics of the clips in shards, as JSON")
    score.add_argument("--shards", required=True, help="shard pattern (path, brace, glob, URL)")
    score.add_argument("--style", choices=STYLES, help="expected style (default: each clip's style tag)")
    score.add_argument("--reference", help="shards of real clips to compare with (default: fresh renders)")
    score.add_argument("--judge", help="judge weights (default: the shipped judge)")
    geometry(score)
    train = commands.add_parser("train-judge", help="train the judge on freshly rendered clips")
    train.add_argument("--out", default=str(Path(__file__).parent / "weights" / "judge.safetensors"))
    train.add_argument("--steps", type=int, default=1500)
    geometry(train)
    scale = commands.add_parser(
        "scale",
        help="toy-FVD of real vs real, real through the teacher's VAE, blurred and noise clips, per style",
    )
    scale.add_argument("--clips", type=int, default=256)
    scale.add_argument(
        "--teacher", help="toy teacher folder whose VAE to pass real clips through (default: shipped)"
    )
    scale.add_argument("--judge", help="judge weights (default: the shipped judge)")
    geometry(scale)
    probe = commands.add_parser("direction", help="does a toy teacher carry and use the motion direction")
    probe.add_argument("--teacher", help="toy teacher folder (default: the shipped one)")
    probe.add_argument("--style", choices=STYLES, default="flat")
    probe.add_argument("--clips", type=int, default=512, help="rendered clips (a quarter held out)")
    probe.add_argument("--probe-timestep", type=int, default=999, help="999: pure noise, text only")
    probe.add_argument("--timesteps", type=int, nargs="+", default=[950, 850, 700, 500])
    probe.add_argument(
        "--drawn-clips", type=int, default=128,
        help="clips generated at the full sampler to check paths and trails (flat only; 0: skip)",
    )  # fmt: skip
    probe.add_argument(
        "--same-noise-clips", type=int, default=64,
        help="noises each generated with the four directions' captions, paths compared (flat only; 0: skip)",
    )  # fmt: skip
    probe.add_argument(
        "--committed-clips", type=int, default=48,
        help="real clips noised and denoised back with their caption and the opposite one (flat only; 0: skip)",
    )  # fmt: skip
    probe.add_argument(
        "--committed-timesteps", type=int, nargs="+", default=[999, 900, 800, 700],
        help="noise levels the real clips are noised to before being denoised back",
    )  # fmt: skip
    geometry(probe)
    sheet = commands.add_parser("sheet", help="a PNG of every style")
    sheet.add_argument("--out", required=True)
    geometry(sheet)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    handlers = {
        "render": _render,
        "score": _score,
        "train-judge": _train_judge,
        "scale": _scale,
        "sheet": _sheet,
        "direction": _direction,
    }
    print(json.dumps(handlers[args.command](args), indent=2))


if __name__ == "__main__":
    main()
