"""Sample videos while a stage trains: every N iterations the student generates the configured prompts
on each hosted pool member, at its own step count without guidance, and the clips go to the logger (a
frames-by-clips image, viewable in TensorBoard without extra packages) and to gifs in the stage folder."""

from __future__ import annotations

from pathlib import Path

import lightning
import torch

from lightning_distill.diffusion.generate import generate
from lightning_distill.media import contact_sheet, save_clip


class SampleLogger(lightning.Callback):
    def __init__(
        self, prompts: list[str], every_n_iterations: int, folder: Path, frames: int, size: int, seed: int
    ):
        self.prompts, self.every, self.folder = list(prompts), int(every_n_iterations), Path(folder)
        self.frames, self.size, self.seed = frames, size, seed

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        iteration = int(pl_module.iteration)
        if not self.prompts or self.every <= 0 or iteration % self.every or not trainer.is_global_zero:
            return
        steps = pl_module.plan.student_steps
        for name, member in pl_module.members.items():
            was_training = member.unet.training
            videos = generate(
                member.unet.eval(), member.base, self.prompts, steps=steps, sampler="euler", seed=self.seed,
                frames=self.frames, latent_size=self.size // member.base.vae_scale_factor, progress=False,
            )  # fmt: skip
            member.unet.train(was_training)
            sheet = torch.from_numpy(contact_sheet(videos, upscale=2)).permute(2, 0, 1)
            experiment = getattr(trainer.logger, "experiment", None)
            if hasattr(experiment, "add_image"):
                experiment.add_image(f"samples/{name}", sheet, global_step=iteration)
            for index, video in enumerate(videos):
                save_clip(
                    video, self.folder / f"iteration_{iteration:06d}" / f"{name}_{index:02d}", upscale=4
                )
