"""Stages 3 and 4 of the toy teacher: the toy "SD1.5" image UNet on frames of every style (captions never
name the style, so the base model draws a style at random, as SD1.5 draws from all of its training
data), then one LoRA per style fine-tuned from it: the toy world's community base models."""

from __future__ import annotations

import lightning
import torch
from peft import LoraConfig, get_peft_model

from lightning_distill.diffusion.schedule import NoiseSchedule
from lightning_distill.toy.models import STYLE_LORA_CONFIG
from lightning_distill.toy.teacher.denoising import caption_embeddings, denoising_loss, warmup_schedule


class ToyImageUNetTraining(lightning.LightningModule):
    """Batches: {"latents": (B, 4, h, w) scaled VAE latents of single frames, "captions": list of B}.

    With `lora=True` the UNet is frozen and a style LoRA (STYLE_LORA_CONFIG) is trained on top of it.
    `lr_decay`: "constant" after warm-up, or "cosine" to zero at the trainer's max_steps (the annealing
    phase of the base UNet). `high_noise_fraction`: see `denoising.denoising_loss`.
    """

    def __init__(
        self,
        unet: torch.nn.Module,
        text_table: dict[str, torch.Tensor],
        lr: float,
        caption_dropout: float = 0.1,
        lora: bool = False,
        seed: int = 0,
        lr_decay: str = "constant",
        high_noise_fraction: float = 0.0,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["unet", "text_table"])
        if lora:
            torch.manual_seed(seed)
            unet = get_peft_model(unet, LoraConfig(**STYLE_LORA_CONFIG))
        self.unet = unet
        self.text_table = text_table
        self.schedule = NoiseSchedule()
        self.generator = torch.Generator().manual_seed(seed)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        states = caption_embeddings(
            batch["captions"], self.text_table, self.hparams.caption_dropout, self.generator
        )
        loss = denoising_loss(
            lambda x, t, s: self.unet(x, t, encoder_hidden_states=s).sample,
            batch["latents"],
            states,
            self.schedule,
            self.generator,
            self.hparams.high_noise_fraction,
        )
        self.log("unet/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        parameters = [p for p in self.unet.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=self.hparams.lr, weight_decay=0.0)
        schedule = warmup_schedule(optimizer, self.trainer.max_steps, self.hparams.lr_decay)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
