"""The first stage, 128 -> 32 steps, trained with MSE (ADL §3.4, SDXL-Lightning §3.6).

The teacher (the original AnimateDiff) makes n Euler moves of its 128-step grid with classifier-free
guidance (the recipe's `recipe.mse.guidance_scale`, conf/recipe/, where each world's value and its reason
live, or a member's own `guidance_scale` where its base-model config sets one; the empty prompt as the
unconditional one: "no negative prompt"); the student makes one move of its
32-step grid from the same x_t, without guidance, so guidance is distilled into it.

The loss is the mean squared error between the two moves' destinations x_{t-ns}, by default in the space
the UNet reads (DDPM-scaled latents, `loss_space="destination"`): that is where the next stage's moves
start from, so matching it is matching the sampler's trajectory. At the last move the destination is the
predicted clean latent itself. Because both moves start from the same x_t, a destination gap is a fixed
multiple of the gap between the eps, x0 or v the two moves imply (`NoiseSchedule.move_error_scale`), so
`loss_space` only reweights the student's moves by timestep: "destination" weighs an eps gap by c^2, the
squared change of a 32-step move's destination per unit of eps (c = 0.084-0.20: least for the moves from
t = 249 to 30, most for the first, t = 999, and the last, to clean), so it puts little weight on the x0 the
noisiest moves aim at, where guidance decides the layout; "x0" and "v" weigh those moves up. The logged
`mse/loss` is in the chosen space; `mse/destination_gap` is the destination MSE in every run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lightning_distill.stages.motion_modules import using
from lightning_distill.stages.moves import student_move, teacher_moves
from lightning_distill.stages.stage_module import StageModule
from lightning_distill.stages.timesteps import teacher_path


class MSEStage(StageModule):
    """Batches: {"member": name, "latents": (B, C, F, h, w) scaled clean latents, "captions": list of B}."""

    def __init__(
        self,
        *args,
        guidance_scale: float = 7.5,
        lr: float = 1e-5,
        betas=(0.9, 0.999),
        loss_space: str = "destination",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.loss_space = loss_space  # checked with the chain (stages/chain.py), before the pool loads
        self.guidance_scale = guidance_scale
        self.lr = lr
        self.betas = tuple(betas)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        member = self.members[batch["member"]]
        latents = batch["latents"]
        generator = self.generator()
        _, t, t_next, x_t = self.noisy_input(latents, generator)
        states = member.text_states(batch["captions"])
        guidance_scale = member.guidance(self.guidance_scale)
        negative = member.text_states([""] * len(batch["captions"])) if guidance_scale > 1 else None
        path = teacher_path(
            self.schedule, self.plan.teacher_steps, t, t_next, self.plan.moves_per_student_move
        )
        with using(member.unet, self.teacher):
            target = teacher_moves(member.unet, self.schedule, x_t, path, states, negative, guidance_scale)
        prediction = student_move(member.unet, self.schedule, x_t, t, t_next, states)
        scale = self.schedule.move_error_scale(t, t_next, self.loss_space, like=target)
        loss = F.mse_loss(scale * prediction.float(), scale * target.float())
        gap = F.mse_loss(prediction.detach().float(), target.float())  # comparable across loss spaces
        self.iteration += 1
        self.log_dict(
            {"mse/loss": loss, f"mse/loss_{member.name}": loss, "mse/destination_gap": gap}, prog_bar=False
        )
        self.log("loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.student.parameters(), lr=self.lr, betas=self.betas)
