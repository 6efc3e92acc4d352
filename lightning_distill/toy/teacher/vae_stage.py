"""Stage 1 of the toy teacher: the VAE, trained on single frames as SD's autoencoder was trained on
images, then given the scaling factor that makes its latents unit-variance (SD1.5's 0.18215 was chosen
the same way)."""

from __future__ import annotations

import lightning
import torch
import torch.nn.functional as F

from lightning_distill.toy.models import build_vae


class ToyVAETraining(lightning.LightningModule):
    """Batches: {"frames": (B, 3, H, W) in [-1, 1]}.

    Loss = L1 + MSE reconstruction + kl_weight * KL. The KL weight is small, as in SD's KL-f8 (1e-6):
    the latents must stay close to Gaussian-shaped for diffusion, but reconstruction decides what the
    toy world's judge can later recognise in decoded samples.
    """

    def __init__(self, lr: float = 1e-3, kl_weight: float = 1e-6, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.vae = build_vae(seed)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        frames = batch["frames"]
        posterior = self.vae.encode(frames).latent_dist
        reconstruction = self.vae.decode(posterior.sample()).sample
        l1 = F.l1_loss(reconstruction, frames)
        mse = F.mse_loss(reconstruction, frames)
        kl = posterior.kl().mean()
        loss = l1 + mse + self.hparams.kl_weight * kl
        self.log_dict({"vae/l1": l1, "vae/mse": mse, "vae/kl": kl}, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.vae.parameters(), lr=self.hparams.lr, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.trainer.max_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@torch.no_grad()
def fit_scaling_factor(vae, frames: torch.Tensor) -> float:
    """1 / std of the latent means over `frames` (N, 3, H, W): what SD calls `scaling_factor`."""
    latents = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in frames.split(256)])
    return float(1.0 / latents.std())
