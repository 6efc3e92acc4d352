"""`python -m lightning_distill +experiment=toy_teacher`: train the toy AnimateDiff, stage by stage.

Each stage writes its part into the output folder atomically and is skipped when that part is already
there, so a crashed run resumes at the stage it was in (`toy_teacher.output=<folder>`). With
`toy_teacher.install=true` the finished folder replaces the one shipped in the package.
"""

from __future__ import annotations

import functools
import itertools
import logging
import shutil
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from lightning_distill.atomic import atomic_directory
from lightning_distill.data.random_batches import RandomBatches, batches_loader
from lightning_distill.models.tokenizer import sd15_tokenizer
from lightning_distill.toy.models import build_motion_adapter, build_unet
from lightning_distill.toy.spec import caption_from, parse_caption
from lightning_distill.toy.teacher import folder as parts
from lightning_distill.toy.teacher.clips import ClipBank, load_clip_banks, to_float
from lightning_distill.toy.teacher.motion_stage import ToyMotionModuleTraining
from lightning_distill.toy.teacher.text_stage import ATTRIBUTES, ToyTextEncoderTraining
from lightning_distill.toy.teacher.unet_stage import ToyImageUNetTraining
from lightning_distill.toy.teacher.vae_stage import ToyVAETraining, fit_scaling_factor
from lightning_distill.toy.world import (
    COLOURS,
    DEFAULT_FRAMES,
    DEFAULT_SIZE,
    MOTIONS,
    SEEN_STYLES,
    SHAPES,
    STYLES,
    VOCABULARY,
)

log = logging.getLogger("lightning_distill.toy")
# Only the run directory keeps them (to resume a later phase); the installed teacher needs `unet` and
# `motion_module`.
PRETRAINED_UNET = "unet_pretrain"
PRETRAINED_MOTION = "motion_module_pretrain"


def still_cycle_part(cycle: int) -> str:
    """The motion module after held-still cycle `cycle` when another cycle follows (run directory only)."""
    return f"motion_module_still{cycle}"


def part_chains(still_cycles: int) -> list[list[str]]:
    """Each part trained in phases, as the parts its phases write in order, the installed one last. One
    table for what a rerun may skip (a phase whose part, or any later one, is there) and what the install
    leaves out (all but the last of each chain)."""
    if isinstance(still_cycles, bool) or not isinstance(still_cycles, int) or still_cycles < 1:
        raise ValueError(
            f"toy_teacher.motion_still.cycles={still_cycles!r}: give a whole number of at least 1 "
            "(steps: 0 switches the held-still phase off)"
        )
    motion = [PRETRAINED_MOTION, *(still_cycle_part(k) for k in range(1, still_cycles)), "motion_module"]
    return [[PRETRAINED_UNET, "unet"], motion]


def all_captions() -> list[str]:
    """Every caption the toy world can say, and the empty prompt (classifier-free guidance)."""
    return ["", *(caption_from(s, c, m) for s in SHAPES for c in COLOURS for m in MOTIONS)]


def _fit(
    cfg: DictConfig,
    module,
    make_batch,
    steps: int,
    name: str,
    seed: int,
    gradient_clip_val: float | None = None,
) -> None:
    trainer = instantiate(
        cfg.trainer,
        max_steps=steps,
        gradient_clip_val=gradient_clip_val,
        logger=TensorBoardLogger(cfg.run_dir, name=f"toy_teacher_{name}", version=""),
        log_every_n_steps=min(50, max(1, steps // 20)),
    )
    started = time.time()
    trainer.fit(module, batches_loader(RandomBatches(make_batch, seed)))
    log.info("toy teacher stage %s: %d steps in %.0f s", name, steps, time.time() - started)


@torch.no_grad()
def _encode_banks(vae, banks: dict[str, ClipBank]) -> dict[str, torch.Tensor]:
    """Scaled latents (N, 4, F, h, w) of every clip, computed once (the peers' latent precompute)."""
    scale = vae.config.scaling_factor
    latents = {}
    for style, bank in banks.items():
        chunks = []
        for videos in bank.videos.split(128):
            b, c, f, h, w = videos.shape
            frames = to_float(videos).permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
            z = vae.encode(frames).latent_dist.mean * scale
            chunks.append(z.reshape(b, f, *z.shape[1:]).permute(0, 2, 1, 3, 4))
        latents[style] = torch.cat(chunks)
    return latents


def _text_batches(tokenizer, batch_size: int):
    captions = all_captions()
    encoded = tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    ids = encoded.input_ids
    eos_index = (ids == tokenizer.eos_token_id).int().argmax(dim=1)
    labels = {name: [] for name in ATTRIBUTES}
    for caption in captions:
        parsed = parse_caption(caption) if caption else {}
        for name in ATTRIBUTES:
            vocabulary = VOCABULARY[name]
            labels[name].append(vocabulary.index(parsed[name]) if name in parsed else len(vocabulary))
    labels = {name: torch.tensor(values) for name, values in labels.items()}

    def make_batch(generator: torch.Generator) -> dict:
        index = torch.randint(len(captions), (batch_size,), generator=generator)
        return {
            "input_ids": ids[index],
            "eos_index": eos_index[index],
            "labels": {name: values[index] for name, values in labels.items()},
        }

    return make_batch


@torch.no_grad()
def _text_table(text_encoder, tokenizer) -> dict[str, torch.Tensor]:
    captions = all_captions()
    ids = tokenizer(
        captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    ).input_ids
    states = text_encoder(ids).last_hidden_state
    return dict(zip(captions, states, strict=True))


def _frame_batches(latents: dict[str, torch.Tensor], captions: dict[str, list[str]], styles, batch_size: int):
    def make_batch(generator: torch.Generator) -> dict:
        style = (
            styles[int(torch.randint(len(styles), (1,), generator=generator))]
            if len(styles) > 1
            else styles[0]
        )
        pool = latents[style]
        index = torch.randint(pool.shape[0], (batch_size,), generator=generator)
        frame = torch.randint(pool.shape[2], (batch_size,), generator=generator)
        return {"latents": pool[index, :, frame], "captions": [captions[style][i] for i in index.tolist()]}

    return make_batch


def _clip_batches(latents, captions, styles, batch_size: int):
    def make_batch(generator: torch.Generator) -> dict:
        style = styles[int(torch.randint(len(styles), (1,), generator=generator))]
        index = torch.randint(latents[style].shape[0], (batch_size,), generator=generator)
        return {
            "style": style,
            "latents": latents[style][index],
            "captions": [captions[style][i] for i in index.tolist()],
        }

    return make_batch


def _share_motion_modules(unets: dict[str, torch.nn.Module], adapter) -> tuple[dict, list]:
    """One UNetMotionModel per style whose motion modules are the same module objects."""
    from diffusers import UNetMotionModel

    motion_unets = {}
    shared = None
    for style, unet in unets.items():
        model = UNetMotionModel.from_unet2d(unet, adapter)
        model.freeze_unet2d_params()
        if shared is None:
            shared = model
        else:
            for mine, theirs in zip(model.down_blocks, shared.down_blocks, strict=True):
                mine.motion_modules = theirs.motion_modules
            for mine, theirs in zip(model.up_blocks, shared.up_blocks, strict=True):
                mine.motion_modules = theirs.motion_modules
            model.mid_block.motion_modules = shared.mid_block.motion_modules
        motion_unets[style] = model
    parameters = [p for name, p in shared.named_parameters() if "motion_modules" in name]
    return motion_unets, parameters


def _motion_state_to_adapter(shared_unet, adapter):
    """Copy the trained motion modules back into a MotionAdapter (its keys are the UNet's minus the
    block prefix structure, which diffusers' own `save_motion_modules` maps the same way)."""
    state = {k: v for k, v in shared_unet.state_dict().items() if "motion_modules" in k}
    adapter.load_state_dict(state, strict=True)
    return adapter


def train_toy_teacher(cfg: DictConfig) -> dict:
    t = cfg.toy_teacher
    out = Path(t.output)
    out.mkdir(parents=True, exist_ok=True)
    seed = int(cfg.seed)
    tokenizer = sd15_tokenizer()
    banks = load_clip_banks(
        Path(cfg.paths.data) / "toy", list(STYLES), t.clips_per_style, seed, DEFAULT_FRAMES, DEFAULT_SIZE
    )
    captions = {style: bank.captions for style, bank in banks.items()}
    timings = dict(parts.read_info(out).get("stage_seconds", {}))
    chains = part_chains(t.motion_still.cycles)
    unet_chain, motion_chain = chains
    this_or_later = {part: chain[i:] for chain in chains for i, part in enumerate(chain)}

    def stage(name: str, run) -> None:
        """Train part `name` unless the folder has it, or a part a later phase continued it into
        (`part_chains`: an installed teacher leaves the earlier ones out, and needs nothing more from them)."""
        for present in this_or_later.get(name, [name]):
            if parts.has_component(out, present):
                log.info("toy teacher stage %s: %s already in %s, skipped", name, present, out)
                return
        started = time.time()
        run()
        timings[name] = round(time.time() - started, 1)
        parts.write_info(out, {**parts.read_info(out), "stage_seconds": timings})

    def train_vae() -> None:
        module = ToyVAETraining(**t.vae.module, seed=seed)

        def make_batch(generator):
            style = STYLES[int(torch.randint(len(STYLES), (1,), generator=generator))]
            return {"frames": banks[style].draw_frames(generator, t.vae.batch_size)[0]}

        _fit(cfg, module, make_batch, t.vae.steps, "vae", seed)
        generator = torch.Generator().manual_seed(seed)
        sample = torch.cat([banks[s].draw_frames(generator, 512)[0] for s in STYLES])
        module.vae.register_to_config(scaling_factor=fit_scaling_factor(module.vae.eval(), sample))
        parts.save_component(module.vae, out, "vae")

    stage("vae", train_vae)
    vae = parts.load_vae(out).eval().requires_grad_(False)

    @functools.cache
    def latents() -> dict[str, torch.Tensor]:
        # Encoded on first use (minutes for every style's clips): a rerun whose parts all exist skips it.
        return _encode_banks(vae, banks)

    def train_text_encoder() -> None:
        module = ToyTextEncoderTraining(**t.text_encoder.module, seed=seed)
        _fit(
            cfg,
            module,
            _text_batches(tokenizer, t.text_encoder.batch_size),
            t.text_encoder.steps,
            "text_encoder",
            seed,
        )
        parts.save_component(module.text_encoder, out, "text_encoder")

    stage("text_encoder", train_text_encoder)
    text_encoder = parts.load_text_encoder(out).eval().requires_grad_(False)
    table = _text_table(text_encoder, tokenizer)

    # The toy "SD1.5" UNet trains in two phases, each its own part: at a constant rate
    # (`unet_pretrain`), then annealed from that part to zero rate (`unet`, which every later stage
    # loads). Two parts, so that annealing longer or differently resumes from the pretrained weights.
    def train_base_unet() -> None:
        module = ToyImageUNetTraining(build_unet(seed), table, **t.unet.module, seed=seed)
        make_batch = _frame_batches(latents(), captions, list(STYLES), t.unet.batch_size)
        _fit(cfg, module, make_batch, t.unet.steps, "unet", seed)
        parts.save_component(module.unet, out, PRETRAINED_UNET)

    def anneal_base_unet() -> None:
        unet = parts.load_unet(out, part=PRETRAINED_UNET)
        module = ToyImageUNetTraining(unet, table, **t.unet_anneal.module, seed=seed + 100)
        make_batch = _frame_batches(latents(), captions, list(STYLES), t.unet_anneal.batch_size)
        _fit(cfg, module, make_batch, t.unet_anneal.steps, "unet_anneal", seed + 100)
        parts.save_component(module.unet, out, "unet")

    stage(unet_chain[0], train_base_unet)
    stage(unet_chain[1], anneal_base_unet)

    for offset, style in enumerate(STYLES):

        def train_lora(style=style, offset=offset) -> None:
            base = parts.load_unet(out).requires_grad_(False)
            module = ToyImageUNetTraining(
                base, table, **t.style_lora.module, lora=True, seed=seed + 1 + offset
            )
            make_batch = _frame_batches(latents(), captions, [style], t.style_lora.batch_size)
            _fit(cfg, module, make_batch, t.style_lora.steps, f"lora_{style}", seed + 1 + offset)
            parts.save_component(module.unet, out / "unet_lora", style)

        stage(f"unet_lora/{style}", train_lora)

    # The motion module trains in phases, each its own part, as the UNet does: from the identity with the
    # ordinary loss (`motion_module_pretrain`), then continued with held-still clips in part of each batch,
    # so that the caption, not the noise, sets the direction: `motion_still.cycles` cosine cycles (warm
    # restarts, a fresh optimiser each), the last one writing `motion_module`, the shipped one.
    seen = list(SEEN_STYLES)  # the held-out style's UNet never trains the motion module

    def fit_motion_module(adapter, phase: DictConfig, name: str, part: str, phase_seed: int) -> None:
        if not phase.steps:  # a phase switched off (steps: 0) passes its input on unchanged
            parts.save_component(adapter, out, part)
            return
        unets = {style: parts.load_unet(out, style) for style in seen}
        motion_unets, parameters = _share_motion_modules(unets, adapter)
        module = ToyMotionModuleTraining(motion_unets, parameters, table, **phase.module, seed=phase_seed)
        make_batch = _clip_batches(latents(), captions, seen, phase.batch_size)
        _fit(cfg, module, make_batch, phase.steps, name, phase_seed, phase.get("gradient_clip_val"))
        parts.save_component(_motion_state_to_adapter(motion_unets[seen[0]], adapter), out, part)

    stage(
        PRETRAINED_MOTION,
        lambda: fit_motion_module(
            build_motion_adapter(seed), t.motion, "motion_module", PRETRAINED_MOTION, seed
        ),
    )
    for cycle, (source, part) in enumerate(itertools.pairwise(motion_chain), start=1):
        # Every cycle draws the same batches (seed + 200): the schedule the shipped teacher was measured
        # with, the second cycle having been run as a resume of the first's folder.
        stage(
            part,
            lambda source=source, part=part, cycle=cycle: fit_motion_module(
                parts.load_motion_adapter(out, part=source),
                t.motion_still,
                "motion_still" if cycle == 1 else f"motion_still_{cycle}",
                part,
                seed + 200,
            ),
        )

    if "quality" not in parts.read_info(out):
        from lightning_distill.toy.teacher.quality import measure_teacher

        started = time.time()
        quality = measure_teacher(out, int(cfg.metrics.clips_per_style), int(cfg.metrics.seed))
        timings["quality"] = round(time.time() - started, 1)
        parts.write_info(out, {**parts.read_info(out), "quality": quality, "stage_seconds": timings})

    info = {
        **parts.read_info(out),
        "seed": seed,
        "command": "python -m lightning_distill +experiment=toy_teacher " + " ".join(t.get("overrides", [])),
        "config": OmegaConf.to_container(t, resolve=True),
    }
    parts.write_info(out, info)
    if t.install:
        with atomic_directory(parts.SHIPPED) as temporary:
            shutil.copytree(
                out,
                temporary,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns(*(part for chain in chains for part in chain[:-1])),
            )
        log.info("toy teacher installed into %s", parts.SHIPPED)
    return {"teacher": str(out), "stage_seconds": timings}
