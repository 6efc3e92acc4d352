"""Stage 2 of the toy teacher: the CLIP text encoder.

SD1.5's text encoder came pretrained (CLIP) and frozen; its token states carry the caption's meaning to
the UNet's cross-attention, and, through the causal mask, the end-of-text and padding positions carry the
whole sentence. AnimateDiff's motion modules have no text input of their own: whatever they learn of
"moving left" reaches them through those text-conditioned image features. So the toy encoder is trained
to put every attribute of the caption (shape, colour, motion) into the states that follow the words,
with linear probes on the end-of-text and padding positions; the empty prompt (for classifier-free
guidance) maps to a class of its own.
"""

from __future__ import annotations

import lightning
import torch
import torch.nn.functional as F

from lightning_distill.toy.models import build_text_encoder
from lightning_distill.toy.world import VOCABULARY

ATTRIBUTES = ("shape", "colour", "motion")


class ToyTextEncoderTraining(lightning.LightningModule):
    """Batches: {"input_ids": (B, 77) int64, "eos_index": (B,) int64, "labels": {attribute: (B,) int64}}
    where label len(VOCABULARY[attribute]) means "not said" (the empty prompt)."""

    def __init__(self, lr: float = 3e-3, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.text_encoder = build_text_encoder(seed)
        width = self.text_encoder.config.hidden_size
        self.probes = torch.nn.ModuleDict(
            {name: torch.nn.Linear(width, len(VOCABULARY[name]) + 1) for name in ATTRIBUTES}
        )

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        states = self.text_encoder(batch["input_ids"]).last_hidden_state  # (B, 77, D)
        positions = torch.arange(states.shape[1], device=states.device)
        after_words = positions[None, :] >= batch["eos_index"][:, None]  # (B, 77)
        loss = states.new_zeros(())
        for name in ATTRIBUTES:
            logits = self.probes[name](states)  # (B, 77, classes)
            target = batch["labels"][name][:, None].expand(-1, states.shape[1])
            per_position = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
            attribute_loss = (per_position * after_words).sum() / after_words.sum()
            accuracy = ((logits.argmax(-1) == target) | ~after_words).all(dim=1).float().mean()
            self.log(f"text/{name}_accuracy", accuracy, prog_bar=True)
            loss = loss + attribute_loss
        self.log("text/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=0.0)
