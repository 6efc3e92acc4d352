"""Run an experiment's stage chain: each stage's teacher is the previous stage's student, frozen; its
student starts from that teacher; completed stages are never trained again, an interrupted one continues
from its last checkpoint.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from lightning_distill.atomic import write_bytes_atomic
from lightning_distill.data.random_batches import RandomBatches, batches_loader
from lightning_distill.diffusion.schedule import NoiseSchedule
from lightning_distill.models.motion_checkpointing import (
    disable_motion_checkpointing,
    enable_motion_checkpointing,
)
from lightning_distill.stages.adversarial import AdversarialStage
from lightning_distill.stages.chain import StagePlan
from lightning_distill.stages.checkpoint import (
    LAST,
    STUDENT,
    SUMMARY,
    AtomicStageCheckpoint,
    is_complete,
    resume_checkpoint,
    stage_dir,
)
from lightning_distill.stages.mse import MSEStage
from lightning_distill.stages.pool_setup import PoolSetup
from lightning_distill.stages.sample_logging import SampleLogger

log = logging.getLogger("lightning_distill")


# The consistency stage's image LoRA, next to its student (the AnimateLCM-style baseline).
CONSISTENCY_LORA = "consistency_lora.safetensors"


def _save_adapter(adapter: torch.nn.Module, folder: Path) -> None:
    from lightning_distill.atomic import save_pretrained_atomic

    save_pretrained_atomic(adapter, folder)


def _load_adapter(folder: Path) -> torch.nn.Module:
    from diffusers import MotionAdapter

    return MotionAdapter.from_pretrained(folder, torch_dtype=torch.float32, local_files_only=True)


def _make_batches(setup: PoolSetup, batch_size: int):
    names = setup.hosted

    def make_batch(generator: torch.Generator) -> dict:
        name = setup.pool.draw_from(names, generator)
        latents, captions = setup.banks[name].draw(generator, batch_size)
        return {"member": name, "latents": latents, "captions": captions}

    return make_batch


def _build_module(cfg: DictConfig, plan: StagePlan, setup: PoolSetup, student, adapters: list, stage_cfg):
    common = {
        "plan": plan,
        "members": setup.members,
        "student": student,
        "teacher": adapters[-1],
        "schedule": NoiseSchedule(),
        "seed": int(cfg.seed),
    }
    if plan.objective == "mse":
        return MSEStage(**common, **OmegaConf.to_container(stage_cfg.module, resolve=True))
    if plan.objective == "consistency":
        from lightning_distill.models.loading import load_base_model
        from lightning_distill.stages.consistency import ConsistencyStage

        # The image LoRA is distilled on the base every pool member derives from (SD1.5; the toy "SD1.5"),
        # the one whose image layers the discriminator also starts from.
        image_unet = load_base_model(instantiate(cfg.discriminator.image_layers_from)).unet
        options = OmegaConf.to_container(stage_cfg.module, resolve=True)
        return ConsistencyStage(**common, image_unet=image_unet, **options)
    from lightning_distill.models.discriminator import Discriminator

    discriminator = Discriminator.from_unet(
        setup.discriminator_unet(),
        num_base_models=len(setup.pool.index),
        latent_shape=setup.latent_shape,
        **cfg.discriminator.options,
    )
    options = OmegaConf.to_container(stage_cfg.module, resolve=True)
    use_skip = options.pop("skip_level_teacher", False) and len(adapters) >= 2
    return AdversarialStage(
        **common,
        discriminator=discriminator,
        skip_level_teacher=adapters[-2] if use_skip else None,
        skip_level_teacher_steps=plan.teacher_steps * (plan.teacher_steps // plan.student_steps)
        if use_skip
        else None,
        **options,
    )


def sync_report(module, setup: PoolSetup) -> list[dict]:
    """Per rank: the members it hosts, a checksum of the shared motion module and of each hosted member's
    image layers. Motion checksums must agree across ranks (DDP averaged their gradients); image checksums
    are each rank's own (frozen base models are never synchronised)."""
    import torch.distributed as dist

    trained = {id(p) for p in module.student.parameters()}
    local = {
        "rank": setup.rank,
        "members": list(setup.hosted),
        "motion_checksum": float(sum(p.detach().double().sum() for p in module.student.parameters())),
        "image_checksums": {
            name: float(
                sum(p.detach().double().sum() for p in member.unet.parameters() if id(p) not in trained)
            )
            for name, member in setup.members.items()
        },
    }
    if not (dist.is_available() and dist.is_initialized()):
        return [local]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    return gathered


def iterations_of(plan: StagePlan, stage_cfg) -> int:
    if plan.objective == "mse":
        return int(stage_cfg.iterations)
    if plan.objective == "consistency":
        return int(stage_cfg.module.image_steps) + int(stage_cfg.module.motion_steps)
    return int(stage_cfg.module.conditional_steps) + int(stage_cfg.module.unconditional_steps)


def run_stage(cfg: DictConfig, plan: StagePlan, setup: PoolSetup, adapters: list, run_dir: Path) -> dict:
    folder = stage_dir(run_dir, plan.index, plan.name)
    stage_cfg = cfg.stages[plan.name]
    student = copy.deepcopy(adapters[-1])
    if cfg.memory.checkpoint_motion_modules:
        enable_motion_checkpointing(student)
    for member in setup.members.values():
        if cfg.memory.checkpoint_image_layers:
            member.unet.enable_gradient_checkpointing()
        else:
            member.unet.disable_gradient_checkpointing()
    module = _build_module(cfg, plan, setup, student, adapters, stage_cfg)
    total = iterations_of(plan, stage_cfg)
    batches = RandomBatches(
        _make_batches(setup, int(stage_cfg.batch_size)),
        seed=int(cfg.seed) * 1000 + plan.index * 10 + setup.rank,
        start=lambda: int(module.iteration),
        stop=total,
    )
    trainer = instantiate(
        cfg.trainer,
        max_epochs=1,
        max_steps=-1,
        callbacks=[
            AtomicStageCheckpoint(folder, int(cfg.checkpoint_every)),
            SampleLogger(
                list(cfg.samples.prompts),
                int(cfg.samples.every_n_iterations),
                folder / "samples",
                int(cfg.data.frames),
                int(cfg.data.size),
                int(cfg.seed),
            ),
        ],
        logger=TensorBoardLogger(
            str(run_dir), name="tensorboard", version=folder.name, default_hp_metric=False
        ),
    )
    resume = resume_checkpoint(folder)
    if resume:
        log.info("stage %s: resuming from %s", plan.name, resume)
    started = time.time()
    trainer.fit(module, batches_loader(batches), ckpt_path=resume, weights_only=True)
    seconds = time.time() - started
    # The wrappers hold bound methods, which a deepcopy (the next stage's student) would share.
    disable_motion_checkpointing(student)
    summary = {
        "stage": plan.name,
        "objective": plan.objective,
        "teacher_steps": plan.teacher_steps,
        "student_steps": plan.student_steps,
        "iterations": int(module.iteration),
        "batch_size": int(stage_cfg.batch_size),
        "seconds_this_attempt": round(seconds, 1),
        "resumed_from": str(resume) if resume else None,
        "last_logged": {k: round(float(v), 6) for k, v in trainer.logged_metrics.items()},
        "ranks": sync_report(module, setup),
    }
    if plan.objective == "consistency":
        summary["sample_steps"] = list(stage_cfg.sample_steps)
        summary["image_lora"] = CONSISTENCY_LORA
    if setup.rank == 0:
        if plan.objective == "consistency":
            module.save_lora(folder / CONSISTENCY_LORA)
        _save_adapter(student, folder / STUDENT)
        write_bytes_atomic(folder / SUMMARY, (json.dumps(summary, indent=2) + "\n").encode())
        (folder / LAST).unlink(missing_ok=True)
    trainer.strategy.barrier("stage_saved")  # every rank starts the next stage from this student
    return summary


def run_chain(cfg: DictConfig, plans: list[StagePlan], run_dir: Path) -> list:
    """Train every stage not yet complete; return the adapters after each stage (index 0: the teacher)."""
    setup = PoolSetup.from_config(cfg, run_dir)
    adapters = [setup.initial_adapter()]
    for plan in plans:
        folder = stage_dir(run_dir, plan.index, plan.name)
        if is_complete(folder):
            log.info("stage %s: complete in %s, not trained again", plan.name, folder)
            adapters.append(_load_adapter(folder / STUDENT))
            continue
        log.info(
            "stage %s: %s, %d -> %d steps", plan.name, plan.objective, plan.teacher_steps, plan.student_steps
        )
        run_stage(cfg, plan, setup, adapters, run_dir)
        adapters.append(_load_adapter(folder / STUDENT))
    return adapters, setup
