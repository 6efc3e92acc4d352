"""train(cfg) -> metrics: the distillation run, callable from the Hydra entry point, tests and sweeps.

The config is validated before anything heavy happens (a contradictory setting is named with the rule
it breaks); `dry_run=true` stops after validation and instantiation, so a config can be checked on a
laptop before it is sent to a cluster.
"""

from __future__ import annotations

import logging

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lightning_distill.stages.chain import describe_chain, plan_chain

log = logging.getLogger("lightning_distill")


def build_parts(cfg: DictConfig) -> dict:
    """Instantiate every swappable part the config declares (nothing is loaded from disk yet)."""
    return {
        "pool": instantiate(cfg.pool),
        "datamodule": instantiate(cfg.data),
        "logger": instantiate(cfg.logger) if cfg.get("logger") else None,
    }


def train(cfg: DictConfig) -> dict:
    """Run the experiment's stage chain; return its summary metrics."""
    OmegaConf.resolve(cfg)
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
    raise NotImplementedError(
        "Running the stage chain arrives with the distillation stages; use dry_run=true to validate a config."
    )
