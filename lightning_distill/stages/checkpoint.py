"""Resumable stages: a Lightning callback that writes the stage's checkpoint atomically every N
iterations, and the helpers that find where a run stopped.

A run directory holds one folder per stage, `stage_<k>_<name>/`: `last.ckpt` while the stage trains,
then `student/` (the stage's motion module, a diffusers folder) and `summary.json` once it has finished.
A stage with a summary is never trained again; a stage with a `last.ckpt` continues from it (student,
discriminator, optimisers, iteration count; the data position and every random draw follow from the
count). Checkpoints are loaded with `weights_only=True`.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning

LAST = "last.ckpt"
SUMMARY = "summary.json"
STUDENT = "student"


def stage_dir(run_dir: str | Path, index: int, name: str) -> Path:
    return Path(run_dir) / f"stage_{index}_{name}"


def is_complete(folder: Path) -> bool:
    return (folder / SUMMARY).exists() and (folder / STUDENT).is_dir()


def resume_checkpoint(folder: Path) -> Path | None:
    path = folder / LAST
    return path if path.exists() else None


class AtomicStageCheckpoint(lightning.Callback):
    """Every `every_n_iterations` iterations (and when training stops) write `<folder>/last.ckpt` as a
    temporary file in the same folder, then rename it into place: a kill at any moment leaves the
    previous complete checkpoint."""

    def __init__(self, folder: str | Path, every_n_iterations: int):
        self.folder = Path(folder)
        self.every = max(1, int(every_n_iterations))

    def _save(self, trainer: lightning.Trainer) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f".{LAST}.tmp"
        trainer.save_checkpoint(temporary, weights_only=False)  # every rank calls it; only rank 0 writes
        if trainer.is_global_zero:
            os.replace(temporary, self.folder / LAST)
        trainer.strategy.barrier("atomic_stage_checkpoint")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if int(pl_module.iteration) % self.every == 0:
            self._save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save(trainer)
