"""Stage 5 of the toy teacher: the shared motion module, trained on clips with the image UNets frozen,
as AnimateDiff trains its motion module. Every seen style's UNet carries the same motion module, and each
step trains it on one style's clips through that style's UNet (drawn in turn), so that one module serves
the whole pool, the held-out style's UNet never among them."""

from __future__ import annotations

import lightning
import torch

from lightning_distill.diffusion.schedule import NoiseSchedule
from lightning_distill.toy.teacher.denoising import (
    caption_embeddings,
    denoising_loss,
    held_still_loss,
    warmup_schedule,
)


class ToyMotionModuleTraining(lightning.LightningModule):
    """Batches: {"style": str, "latents": (B, 4, F, h, w) scaled clip latents, "captions": list of B}.

    `motion_unets` maps style -> UNetMotionModel; all share one set of motion-module parameters,
    `motion_parameters`, the only ones trained.
    """

    def __init__(
        self,
        motion_unets: dict[str, torch.nn.Module],
        motion_parameters: list[torch.nn.Parameter],
        text_table: dict[str, torch.Tensor],
        lr: float,
        caption_dropout: float = 0.1,
        high_noise_fraction: float = 0.0,
        seed: int = 0,
        lr_decay: str = "constant",
        still_fraction: float = 0.0,
        still_from: int = 700,
    ):
        super().__init__()
        if not 0.0 <= still_fraction <= 1.0:
            raise ValueError(
                f"still_fraction must be in [0, 1] (a share of each batch), got {still_fraction}"
            )
        self.save_hyperparameters(ignore=["motion_unets", "motion_parameters", "text_table"])
        self.motion_unets = torch.nn.ModuleDict(motion_unets)
        self.motion_parameters = motion_parameters
        self.text_table = text_table
        self.schedule = NoiseSchedule()
        self.generator = torch.Generator().manual_seed(seed)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        unet = self.motion_unets[batch["style"]]
        frames = batch["latents"].shape[2]
        states = caption_embeddings(
            batch["captions"], self.text_table, self.hparams.caption_dropout, self.generator
        )

        def denoise(x, t, s):
            return unet(x, t, encoder_hidden_states=s.repeat_interleave(frames, dim=0)).sample

        # The first `still` clips of the batch train on held-still x_t (held_still_loss), the rest as usual.
        still = round(self.hparams.still_fraction * len(states))
        loss = torch.zeros(())
        if still < len(states):
            loss = loss + denoising_loss(
                denoise,
                batch["latents"][still:],
                states[still:],
                self.schedule,
                self.generator,
                self.hparams.high_noise_fraction,
            )
        if still:
            held = held_still_loss(
                denoise, batch["latents"][:still], states[:still], self.schedule, self.generator,
                self.hparams.still_from,
            )  # fmt: skip
            self.log("motion/held_still_loss", held)
            loss = loss + held
        self.log("motion/loss", loss, prog_bar=True)
        self.log(f"motion/loss_{batch['style']}", loss)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.motion_parameters, lr=self.hparams.lr, weight_decay=0.0)
        schedule = warmup_schedule(optimizer, self.trainer.max_steps, self.hparams.lr_decay)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
