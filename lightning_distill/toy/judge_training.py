"""Training the judge: a LightningModule over an endless stream of freshly rendered, degraded clips.

Rendering costs well under a millisecond per clip, so the judge never sees the same clip twice and
cannot overfit; every batch is degraded (``augment.degrade``) so it learns content and style, not the
crispness of renders. Accuracies are measured afterwards on clips from seeds the stream never uses.
"""

from __future__ import annotations

import time

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset

from lightning_distill.toy.augment import degrade
from lightning_distill.toy.judge import HEADS, ToyJudge, default_config, save_judge
from lightning_distill.toy.judge_accuracy import judge_accuracy
from lightning_distill.toy.render import render_specs, sample_spec
from lightning_distill.toy.world import DEFAULT_FRAMES, DEFAULT_SIZE, OPPOSITE_MOTION, VOCABULARY

# The training stream draws from np.random.default_rng([seed, TRAIN_STREAM, batch]); evaluation seeds are
# plain [seed, clip] pairs, so the two never coincide.
TRAIN_STREAM = 7_919
EVAL_SEED_OFFSET = 1_000_000


class RenderedClips(IterableDataset):
    """Endless batches of random clips over every style: (video (B, 3, F, S, S) in [-1, 1], labels per head)."""

    def __init__(self, seed: int, batch_size: int, frames: int, size: int):
        self.seed, self.batch_size, self.frames, self.size = seed, batch_size, frames, size

    def __iter__(self):
        batch = 0
        while True:
            rng = np.random.default_rng([self.seed, TRAIN_STREAM, batch])
            specs = [sample_spec(rng) for _ in range(self.batch_size)]
            labels = {
                head: torch.tensor([VOCABULARY[head].index(getattr(s, head)) for s in specs])
                for head in HEADS
            }
            yield render_specs(specs, self.frames, self.size), labels
            batch += 1


def reverse_some(video: torch.Tensor, labels: dict, generator: torch.Generator, probability: float = 0.3):
    """Play a share of the clips backwards and relabel their motion, so the judge reads motion from how
    the shape moves between frames, not from the trail a single frame shows: a generated clip whose
    frames carry trails but whose shape stands still must not count as moving. (Played backwards, a clip
    moving left moves right while its trail still points the old way.)"""
    flip = torch.rand(video.shape[0], generator=generator) < probability
    motions = VOCABULARY["motion"]
    mapping = torch.tensor([motions.index(OPPOSITE_MOTION[m]) for m in motions])
    video = torch.where(flip[:, None, None, None, None], video.flip(2), video)
    labels = {**labels, "motion": torch.where(flip, mapping[labels["motion"]], labels["motion"])}
    return video, labels


class JudgeTraining(L.LightningModule):
    """Trains a ``ToyJudge`` with the sum of its four heads' cross-entropies on degraded clips."""

    def __init__(self, config: dict, learning_rate: float = 3e-3, max_steps: int = 1000, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.judge = ToyJudge(config)
        self.generator = torch.Generator().manual_seed(seed)

    def training_step(self, batch, batch_index):
        video, labels = batch
        video, labels = reverse_some(video, labels, self.generator)
        outputs = self.judge(degrade(video, self.generator))
        losses = {head: F.cross_entropy(outputs[head], labels[head]) for head in HEADS}
        for head in HEADS:
            accuracy = (outputs[head].argmax(dim=1) == labels[head]).float().mean()
            self.log(f"train/{head}_accuracy", accuracy, prog_bar=head == "motion")
        loss = sum(losses.values())
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.judge.parameters(), lr=self.hparams.learning_rate, weight_decay=1e-4
        )
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=self.hparams.learning_rate, total_steps=self.hparams.max_steps, pct_start=0.15
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def train_judge(
    out: str,
    seed: int = 0,
    steps: int = 1500,
    batch_size: int = 48,
    learning_rate: float = 3e-3,
    frames: int = DEFAULT_FRAMES,
    size: int = DEFAULT_SIZE,
    eval_clips: int = 1000,
    command: str | None = None,
    progress: bool = True,
) -> dict:
    """Train a judge, measure it on ``eval_clips`` fresh clips (clean and blurred), save it; return the info.

    Writes ``out`` (safetensors) and the json beside it with the seed, command, config, training set-up
    and accuracies. Deterministic for a given seed on a given machine (CPU, same torch version).
    """
    L.seed_everything(seed, workers=True, verbose=False)
    config = default_config(frames, size)
    module = JudgeTraining(config, learning_rate=learning_rate, max_steps=steps, seed=seed)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        deterministic=True,
    )
    loader = DataLoader(RenderedClips(seed, batch_size, frames, size), batch_size=None, num_workers=0)
    started = time.perf_counter()
    trainer.fit(module, train_dataloaders=loader)
    seconds = time.perf_counter() - started
    judge = module.judge.eval()
    eval_seed = seed + EVAL_SEED_OFFSET
    info = {
        "seed": seed,
        "command": command,
        "training": {
            "steps": steps,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "clips_seen": steps * batch_size,
            "seconds": round(seconds, 1),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "accuracy": {
            "eval": {"clips": eval_clips, "seed": eval_seed, "styles": "all, uniformly"},
            "clean": judge_accuracy(judge, eval_clips, eval_seed),
            "blur_1px": judge_accuracy(judge, eval_clips, eval_seed, blur_sigma=1.0),
            "blur_1.5px": judge_accuracy(judge, eval_clips, eval_seed, blur_sigma=1.5),
        },
    }
    save_judge(judge, out, info)
    return info
