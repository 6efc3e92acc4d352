"""The AnimateLCM-style baseline as a stage (ALCM, arXiv 2402.00769): consistency distillation, decoupled.

Phase 1, image (`image_steps` iterations): an image consistency LoRA on the image UNet of
`discriminator.image_layers_from` (SD1.5, or the toy "SD1.5"), trained on the batch's frames as images,
as ALCM first distils image generation on SD1.5. Phase 2, video (`motion_steps` iterations): that LoRA,
frozen, is put into every pool member's video UNet and the motion module is distilled on clips.

One training example of either phase (LCM's recipe; maths in diffusion/consistency.py):
- draw t_{n+1} from the 50-point DDIM solver grid, t_n = t_{n+1} - 20, noise the clean latents to x_{n+1};
- online: f_theta(x_{n+1}, t_{n+1}) through the model with the consistency LoRA;
- teacher: one CFG-augmented DDIM step x_{n+1} -> x_n of the original model (LoRA off, teacher motion
  module, guidance `guidance_scale`; the unconditional input is the empty prompt, as everywhere here);
- target: f(x_n, t_n) through the target model without gradient; pseudo-Huber loss between the two.
The target in the video phase is the EMA of the student's motion module *without* the LoRA (ALCM: "the
spatial LoRA is inserted in the online model only"); in the image phase it is the online LoRA model
itself under no-grad (LCM-LoRA's recipe: there is nothing else to average).

Budget: the experiment sets image_steps + motion_steps x batch to the Lightning run it is compared with.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from lightning_distill.diffusion.consistency import consistency_output, pseudo_huber, solver_timesteps
from lightning_distill.diffusion.samplers import guided_eps
from lightning_distill.models import consistency_lora
from lightning_distill.stages.motion_modules import using
from lightning_distill.stages.moves import predict_eps, teacher_moves
from lightning_distill.stages.stage_module import StageModule, grad_norm_of


def image_denoiser(unet: torch.nn.Module):
    """An image UNet as a denoiser of 1-frame "videos" (N, C, 1, h, w), so the schedule and solver code
    serve both phases unchanged."""

    def denoise(x: Tensor, t: Tensor, states: Tensor) -> Tensor:
        return unet(x[:, :, 0], t, encoder_hidden_states=states).sample.float().unsqueeze(2)

    return denoise


class ConsistencyStage(StageModule):
    """Batches as MSEStage's. Iterations: `image_steps` (LoRA) then `motion_steps` (motion module)."""

    def __init__(
        self,
        *args,
        image_unet: torch.nn.Module,
        image_steps: int,
        motion_steps: int,
        lr_lora: float = 1e-4,
        lr_motion: float = 1e-4,
        betas=(0.9, 0.999),
        guidance_scale: float = 7.5,
        ema_decay: float = 0.95,
        lora_rank: int = 8,
        solver_steps: int = 50,
        image_frames_per_clip: int = 2,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        self.lora_config = consistency_lora.lora_config(int(lora_rank))
        image_unet.requires_grad_(False)
        consistency_lora.insert(image_unet, self.lora_config)
        for p in consistency_lora.parameters(image_unet):
            p.requires_grad_(True)
        self.image_unet = image_unet
        for member in self.members.values():
            consistency_lora.insert(member.unet, self.lora_config)
            member.unet.requires_grad_(False)
            consistency_lora.set_enabled(member.unet, False)
        self.student.requires_grad_(True)  # insert() must not have frozen the installed student
        self.ema = copy.deepcopy(self.student).eval().requires_grad_(False)
        self.image_steps, self.motion_steps = int(image_steps), int(motion_steps)
        self.lr_lora, self.lr_motion, self.betas = float(lr_lora), float(lr_motion), tuple(betas)
        self.guidance_scale, self.ema_decay = float(guidance_scale), float(ema_decay)
        self.solver_steps = int(solver_steps)
        self.image_frames_per_clip = int(image_frames_per_clip)
        self._members_have_lora = False

    # A checkpoint keeps the student, its EMA target and the LoRA (the image UNet's frozen weights are
    # the base model's, and load again from it).
    def state_dict(self, *args, **kwargs):
        state = torch.nn.Module.state_dict(self, *args, **kwargs)
        prefix = kwargs.get("prefix", "")
        keep = (prefix + "student.", prefix + "ema.", prefix + "iteration")
        return {
            k: v
            for k, v in state.items()
            if k.startswith(keep) or (k.startswith(prefix + "image_unet.") and "lora_" in k)
        }

    def trained_modules(self) -> list[torch.nn.Module]:
        return [self.student, *consistency_lora.layers(self.image_unet)]

    @property
    def phase(self) -> str:
        return "image" if int(self.iteration) < self.image_steps else "video"

    def _interval(self, batch: int, generator: torch.Generator, device) -> tuple[Tensor, Tensor]:
        """(t_{n+1}, t_n) per example: a solver-grid point and the one before it (floored at 0, as LCM)."""
        grid = solver_timesteps(self.schedule, self.solver_steps)
        start = grid[torch.randint(len(grid), (batch,), generator=generator)]
        stride = self.schedule.num_train_timesteps // self.solver_steps
        return start.to(device), (start - stride).clamp(min=0).to(device)

    def _sync_member_lora(self) -> None:
        """Put the (frozen) image LoRA into every member's video UNet: once per process, and again after a
        resume, since the members are rebuilt from their base models."""
        if self._members_have_lora:
            return
        weights = consistency_lora.state_dict(self.image_unet)
        for member in self.members.values():
            consistency_lora.load_into(member.unet, weights)
        self._members_have_lora = True

    def _image_step(self, batch: dict, generator: torch.Generator) -> dict:
        member = self.members[batch["member"]]
        latents = batch["latents"]  # (B, C, F, h, w): a few frames of each clip, as images
        b, c, f, h, w = latents.shape
        pick = torch.randint(f, (b, self.image_frames_per_clip), generator=generator).to(latents.device)
        frames = torch.stack([latents[i, :, pick[i]] for i in range(b)]).permute(0, 2, 1, 3, 4)
        x0 = frames.reshape(-1, c, 1, h, w)
        captions = [caption for caption in batch["captions"] for _ in range(self.image_frames_per_clip)]
        states = member.text_states(captions)
        negative = member.text_states([""] * len(captions))
        start, end = self._interval(x0.shape[0], generator, x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        x_start = self.schedule.add_noise(x0, noise, start)
        denoise = image_denoiser(self.image_unet)
        with torch.no_grad():
            consistency_lora.set_enabled(self.image_unet, False)
            eps = guided_eps(denoise, x_start, start, states, negative, self.guidance_scale)
            x_end = self.schedule.move(x_start, eps, start, end)
            consistency_lora.set_enabled(self.image_unet, True)
            target = consistency_output(self.schedule, x_end, guided_eps(denoise, x_end, end, states), end)
        online = consistency_output(
            self.schedule, x_start, guided_eps(denoise, x_start, start, states), start
        )
        return {
            "loss": pseudo_huber(online, target),
            "optimizer": 0,
            "parameters": consistency_lora.parameters(self.image_unet),
        }

    def _video_step(self, batch: dict, generator: torch.Generator) -> dict:
        self._sync_member_lora()
        member = self.members[batch["member"]]
        x0 = batch["latents"]
        states = member.text_states(batch["captions"])
        negative = member.text_states([""] * len(batch["captions"]))
        start, end = self._interval(x0.shape[0], generator, x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        x_start = self.schedule.add_noise(x0, noise, start)
        consistency_lora.set_enabled(member.unet, False)
        try:
            with torch.no_grad():
                with using(member.unet, self.teacher):
                    x_end = teacher_moves(
                        member.unet, self.schedule, x_start, torch.stack([start, end]), states, negative,
                        self.guidance_scale,
                    )  # fmt: skip
                with using(member.unet, self.ema):
                    target = consistency_output(
                        self.schedule, x_end, predict_eps(member.unet, x_end, end, states), end
                    )
        finally:
            consistency_lora.set_enabled(member.unet, True)
        try:
            online = consistency_output(
                self.schedule, x_start, predict_eps(member.unet, x_start, start, states), start
            )
        finally:
            consistency_lora.set_enabled(member.unet, False)
        return {
            "loss": pseudo_huber(online, target),
            "optimizer": 1,
            "parameters": list(self.student.parameters()),
        }

    def training_step(self, batch: dict, batch_idx: int) -> None:
        generator = self.generator()
        phase = self.phase
        step = self._image_step(batch, generator) if phase == "image" else self._video_step(batch, generator)
        optimizer = self.optimizers()[step["optimizer"]]
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(step["loss"])
        grad_norm = grad_norm_of(step["parameters"])
        optimizer.step()
        if phase == "video":
            with torch.no_grad():  # the EMA target follows the student (LCM: decay 0.95)
                for target, online in zip(self.ema.parameters(), self.student.parameters(), strict=True):
                    target.lerp_(online, 1.0 - self.ema_decay)
        self.iteration += 1
        self.log_dict(
            {
                f"consistency/loss_{phase}": step["loss"],
                f"consistency/grad_norm_{phase}": grad_norm,
                f"consistency/lr_{phase}": optimizer.param_groups[0]["lr"],
            }
        )
        self.log("loss", step["loss"], prog_bar=True)

    def configure_optimizers(self):
        lora = torch.optim.AdamW(
            consistency_lora.parameters(self.image_unet), lr=self.lr_lora, betas=self.betas
        )
        motion = torch.optim.AdamW(self.student.parameters(), lr=self.lr_motion, betas=self.betas)
        return [lora, motion]

    def save_lora(self, path) -> None:
        consistency_lora.save(self.image_unet, path, self.lora_config)
