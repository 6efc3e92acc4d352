"""train(cfg) -> metrics: the distillation run, callable from the Hydra entry point, tests and sweeps.

The config is validated before anything heavy happens (a contradictory setting is named with the rule
it breaks); `dry_run=true` stops after validation and instantiation, so a config can be checked on a
laptop before it is sent to a cluster. `resume=latest` (or a run directory) continues a run in the
stage and iteration where it stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lightning_distill.config import check_world
from lightning_distill.stages.chain import describe_chain, plan_chain

log = logging.getLogger("lightning_distill")


def build_parts(cfg: DictConfig) -> dict:
    """Instantiate every swappable part the config declares (nothing is loaded from disk yet)."""
    return {
        "pool": instantiate(cfg.pool),
        "datamodule": instantiate(cfg.data),
        "logger": instantiate(cfg.logger) if cfg.get("logger") else None,
    }


def resolve_run_dir(cfg: DictConfig) -> Path:
    """The run directory: a new one, or with `resume`, the one to continue."""
    resume = cfg.get("resume")
    if not resume:
        from hydra.core.hydra_config import HydraConfig

        # Under Hydra, its output directory: the same in every process Lightning's DDP launcher starts
        # (it passes the first process's directory on), where `run_dir`'s timestamp would differ.
        return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path(cfg.run_dir)
    if resume != "latest":
        folder = Path(resume)
        if not folder.is_dir():
            raise FileNotFoundError(f"resume={resume}: no such run directory")
        return folder
    experiment_dir = Path(cfg.paths.output) / str(cfg.experiment)
    runs = sorted(p for p in experiment_dir.glob("*") if p.is_dir() and any(p.glob("stage_*")))
    if not runs:
        raise FileNotFoundError(
            f"resume=latest: no run of experiment {cfg.experiment} with a started stage under {experiment_dir}"
        )
    return runs[-1]


def train(cfg: DictConfig) -> dict:
    """Run the experiment's stage chain; return its summary metrics."""
    check_world(cfg)
    OmegaConf.resolve(cfg)
    if cfg.get("toy_teacher"):
        from lightning_distill.toy.teacher.run import train_toy_teacher

        return train_toy_teacher(cfg)
    plans = plan_chain(cfg.stages)
    parts = build_parts(cfg)
    pool = parts["pool"]
    log.info(
        "experiment %s: %d stage(s), pool %s (held out: %s)\n%s",
        cfg.experiment,
        len(plans),
        ", ".join(f"{n} {s:.3f}" for n, s in pool.shares().items()),
        ", ".join(pool.held_out) or "none",
        describe_chain(plans),
    )
    if cfg.get("dry_run"):
        return {"stages": len(plans), "pool": pool.names, "dry_run": True}
    from lightning_distill.stages.finish import finish_run
    from lightning_distill.stages.runner import run_chain

    run_dir = resolve_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    log.info("run directory: %s", run_dir)
    adapters, setup = run_chain(cfg, plans, run_dir)
    return finish_run(cfg, plans, adapters, setup, run_dir)
