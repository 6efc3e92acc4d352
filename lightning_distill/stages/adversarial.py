"""Every stage after the first: progressive adversarial distillation (ADL §3.3-3.4, SDXL-Lightning §3).

Real = the teacher's n moves from x_t, fake = the student's one move; both land at t_next. The
discriminator (re-initialised at every stage) judges them, and the student learns to fool it, in
alternating updates with manual optimisation:

- conditional phase first: D(x_t, x_next | t, t_next, caption, base model), so the student must keep the
  teacher's flow from each particular x_t;
- then the unconditional relaxation: D'(x_next | t_next, caption, base model) only asks whether the
  destination looks like the teacher's, which removes the "Janus" artifacts of a too-strict target;
  the 1- and 2-step stages take the skip-level teacher (two stages up) in this phase;
- 1- and 2-step stabilisers: the student also trains from extra timesteps, and the discriminator's inputs
  that land on clean data are re-noised to t* in {10, 250, 500, 750} before judging.

Loss: the papers' non-saturating L_D = -log D(real) - log(1 - D(fake)), L_G = -log D(fake), or the
relativistic pairing of each real with the fake from the same x_t (`loss`; stages/gan_loss.py says what
each gives the toy world).
"""

from __future__ import annotations

import torch

from lightning_distill.stages import gan_loss
from lightning_distill.stages.motion_modules import using
from lightning_distill.stages.moves import student_move, teacher_moves
from lightning_distill.stages.stage_module import StageModule, grad_norm_of
from lightning_distill.stages.timesteps import teacher_path

CLEAN = -1


class AdversarialStage(StageModule):
    """Batches as MSEStage's. Iterations: `conditional_steps` then `unconditional_steps`."""

    def __init__(
        self,
        *args,
        discriminator: torch.nn.Module,
        conditional_steps: int,
        unconditional_steps: int,
        lr_student: float = 5e-7,
        lr_discriminator: float = 5e-7,
        betas=(0.0, 0.99),
        skip_level_teacher: torch.nn.Module | None = None,
        skip_level_teacher_steps: int | None = None,
        extra_timesteps: list[int] | None = None,
        extra_probability: float = 0.0,
        renoise_timesteps: list[int] | None = None,
        renoise_weights: list[float] | None = None,
        loss: str = "non_saturating",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        self.discriminator = discriminator.train()
        self.conditional_steps = int(conditional_steps)
        self.unconditional_steps = int(unconditional_steps)
        self.lr_student, self.lr_discriminator, self.betas = lr_student, lr_discriminator, tuple(betas)
        self.skip_level_teacher = (
            skip_level_teacher.eval().requires_grad_(False) if skip_level_teacher else None
        )
        self.skip_level_teacher_steps = skip_level_teacher_steps
        self.extra_timesteps = list(extra_timesteps) if extra_timesteps else None
        self.extra_probability = float(extra_probability)
        self.renoise_timesteps = list(renoise_timesteps) if renoise_timesteps else None
        self.renoise_weights = list(renoise_weights) if renoise_weights else None
        self.loss = gan_loss.check_loss(loss)

    def trained_modules(self) -> list[torch.nn.Module]:
        return [self.student, self.discriminator]

    @property
    def phase(self) -> str:
        return "conditional" if int(self.iteration) < self.conditional_steps else "unconditional"

    def _teacher_for_phase(self):
        """(adapter, its step count) the real samples come from in the current phase."""
        if self.phase == "unconditional" and self.skip_level_teacher is not None:
            return self.skip_level_teacher, self.skip_level_teacher_steps
        return self.teacher, self.plan.teacher_steps

    def _judge(self, x_t, x_next, t, t_next, states, index) -> torch.Tensor:
        frame_states = states.repeat_interleave(x_t.shape[2], dim=0)
        if self.phase == "conditional":
            return self.discriminator.conditional(x_t, x_next, t, t_next, frame_states, index)
        return self.discriminator.unconditional(x_next, t_next, frame_states, index)

    def _judge_real_and_fake(self, x_t, real, fake, t, t_next, states, index):
        frame_states = states.repeat_interleave(x_t.shape[2], dim=0)
        return self.discriminator.real_and_fake(
            x_t, real, fake, t, t_next, frame_states, index, conditional=self.phase == "conditional"
        )

    def _renoise(self, real, fake, t_next, noise, generator):
        """Re-noise destinations at CLEAN to a drawn t* (1- and 2-step stabiliser); D then sees t*.

        Real and fake of one sample share t* and the noise: the discriminator is told one timestep for
        both, so it must judge content, not a noise level that differs from the one it is told."""
        if not self.renoise_timesteps:
            return real, fake, t_next
        t_star = gan_loss.draw_renoise_timesteps(
            t_next.shape[0], self.renoise_timesteps, self.renoise_weights, generator
        ).to(t_next)
        at_clean = t_next == CLEAN
        mask = at_clean.reshape(-1, *([1] * (real.ndim - 1)))

        def renoised(x):
            return torch.where(mask, self.schedule.add_noise(x, noise, t_star), x)

        return renoised(real), renoised(fake), torch.where(at_clean, t_star, t_next)

    def training_step(self, batch: dict, batch_idx: int) -> None:
        member = self.members[batch["member"]]
        latents = batch["latents"]
        generator = self.generator()
        _, t, t_next, x_t = self.noisy_input(latents, generator)
        states = member.text_states(batch["captions"])
        index = torch.full((latents.shape[0],), member.index, dtype=torch.long, device=latents.device)
        teacher, teacher_steps = self._teacher_for_phase()
        moves = teacher_steps // self.plan.student_steps
        path = teacher_path(self.schedule, teacher_steps, t, t_next, moves)
        with using(member.unet, teacher):
            real = teacher_moves(member.unet, self.schedule, x_t, path, states)
        fake = student_move(member.unet, self.schedule, x_t, t, t_next, states)
        renoise = torch.randn(latents.shape, generator=generator).to(latents)
        real_in, fake_in, judged_t = self._renoise(real, fake, t_next, renoise, generator)

        optimizer_d, optimizer_g = self.optimizers()
        # Discriminator update: the student's move is a constant here.
        self.discriminator.requires_grad_(True)
        logits_real, logits_fake = self._judge_real_and_fake(
            x_t, real_in, fake_in.detach(), t, judged_t, states, index
        )
        loss_d = gan_loss.discriminator_loss(logits_real, logits_fake, self.loss)
        optimizer_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        grad_norm_d = grad_norm_of(self.discriminator.parameters())
        optimizer_d.step()

        # Student update: gradients flow through the (momentarily frozen) discriminator into the move.
        self.discriminator.requires_grad_(False)
        if self.loss == "relativistic":
            # The real destinations are judged again by the updated discriminator, in the same batch.
            logits_real_g, logits_g = self._judge_real_and_fake(
                x_t, real_in, fake_in, t, judged_t, states, index
            )
            loss_g = gan_loss.generator_loss(logits_g, logits_real_g.detach(), self.loss)
        else:
            logits_g = self._judge(x_t, fake_in, t, judged_t, states, index)
            loss_g = gan_loss.generator_loss(logits_g)
        optimizer_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        grad_norm_g = grad_norm_of(self.student.parameters())
        optimizer_g.step()
        self.discriminator.requires_grad_(True)

        self.iteration += 1
        self.log_dict(
            {
                "adv/d_real": torch.sigmoid(logits_real).mean(),
                "adv/d_fake": torch.sigmoid(logits_fake).mean(),
                "adv/d_accuracy": gan_loss.accuracy(logits_real, logits_fake),
                "adv/d_pair_accuracy": gan_loss.pair_accuracy(logits_real, logits_fake),
                "adv/loss_d": loss_d,
                "adv/loss_g": loss_g,
                "adv/grad_norm_d": grad_norm_d,
                "adv/grad_norm_g": grad_norm_g,
                "adv/lr_student": optimizer_g.param_groups[0]["lr"],
                "adv/lr_discriminator": optimizer_d.param_groups[0]["lr"],
                "adv/unconditional": float(self.phase == "unconditional"),
            }
        )
        d_acc = gan_loss.TRAINED_ACCURACY[self.loss](logits_real, logits_fake)
        self.log_dict({"loss_g": loss_g, "d_acc": d_acc}, prog_bar=True)

    def configure_optimizers(self):
        optimizer_d = torch.optim.Adam(
            self.discriminator.parameters(), lr=self.lr_discriminator, betas=self.betas
        )
        optimizer_g = torch.optim.Adam(self.student.parameters(), lr=self.lr_student, betas=self.betas)
        return [optimizer_d, optimizer_g]
