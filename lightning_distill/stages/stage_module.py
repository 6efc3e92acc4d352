"""What the MSE and adversarial stages share: the pool's members, the student and teacher motion modules,
the per-iteration random draws, and checkpoints that hold only what a stage trains.

Frozen image weights are registered (so Lightning moves them to the device) but never written to a
checkpoint: they come from the base models, and the teacher from the previous stage's exported student.
A checkpoint holds the student, the discriminator if any, the optimisers and the iteration count, which
also fixes the data position and every random draw (both are functions of (seed, iteration)).
"""

from __future__ import annotations

import lightning
import torch

from lightning_distill.diffusion.schedule import NoiseSchedule
from lightning_distill.stages.chain import StagePlan
from lightning_distill.stages.checkpoint import LAST
from lightning_distill.stages.members import Member
from lightning_distill.stages.motion_modules import install

TRAINED_PREFIXES = ("student.", "discriminator.")


def grad_norm_of(parameters) -> torch.Tensor:
    """The global L2 norm of the parameters' gradients (logged by every stage with manual optimisation)."""
    norms = [p.grad.detach().norm() for p in parameters if p.grad is not None]
    return torch.stack(norms).norm() if norms else torch.zeros(())


class StageModule(lightning.LightningModule):
    def __init__(
        self,
        plan: StagePlan,
        members: dict[str, Member],
        student: torch.nn.Module,
        teacher: torch.nn.Module,
        schedule: NoiseSchedule,
        seed: int,
    ):
        super().__init__()
        self.plan = plan
        self.members = members
        self.member_unets = torch.nn.ModuleDict({name: member.unet for name, member in members.items()})
        self.student = student.train().requires_grad_(True)
        self.teacher = teacher.eval().requires_grad_(False)
        for member in members.values():
            member.unet.requires_grad_(False)
            install(member.unet, self.student)  # the student's modules are the default; teachers borrow in
        self.schedule = schedule
        self.seed = seed
        # Iterations completed; saved in checkpoints, it fixes the data position and the random draws.
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long), persistent=True)
        # Frozen weights are not part of a stage's checkpoint.
        self.strict_loading = False

    def trained_modules(self) -> list[torch.nn.Module]:
        return [self.student]

    def setup(self, stage: str) -> None:
        """Before DDP wraps the module: keep every frozen weight out of DDP's broadcast and gradient
        averaging. Each rank hosts its own base models, and DDP's start-up broadcast from rank 0 would
        overwrite them (ADL §3.2: "DDP was modified so that the frozen base models are not synchronised");
        only the motion module and the discriminator are synchronised."""
        trained = {id(p) for module in self.trained_modules() for p in module.parameters()}
        ignored = [name for name, p in self.named_parameters(remove_duplicate=False) if id(p) not in trained]
        ignored += [name for name, _ in self.named_buffers(remove_duplicate=False) if name != "iteration"]
        self._ddp_params_and_buffers_to_ignore = ignored

    def generator(self) -> torch.Generator:
        """The random draws (timesteps, noise) of this iteration, reproducible across resume."""
        return torch.Generator().manual_seed(
            self.seed * 1_000_003 + int(self.iteration) * 7 + self.plan.index
        )

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "")
        keep = (*tuple(prefix + p for p in TRAINED_PREFIXES), prefix + "iteration")
        return {k: v for k, v in state.items() if k.startswith(keep)}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Before Lightning restores a stage checkpoint: it must hold exactly this stage's trained weights,
        with their shapes. Loading is not strict (frozen weights are not in it), so a checkpoint whose
        student or discriminator is laid out differently (written by another version of the stage) would
        otherwise resume with some weights silently left as initialised, or fail deep in the optimiser."""
        expected = {k: tuple(v.shape) for k, v in self.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in checkpoint.get("state_dict", {}).items()}
        if expected == found:
            return
        missing = sorted(expected.keys() - found.keys())
        unexpected = sorted(found.keys() - expected.keys())
        reshaped = sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k])
        parts = [
            f"{label} ({len(keys)}): {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"
            for label, keys in (
                ("missing", missing),
                ("not in this stage", unexpected),
                ("other shape", reshaped),
            )
            if keys
        ]
        raise RuntimeError(
            f"stage {self.plan.name}: its checkpoint ({LAST} in the stage folder) does not fit the "
            f"weights this stage trains: {'; '.join(parts)}. It was written by another version of "
            "the stage; delete it to train this stage from its start (finished stages are kept), or resume "
            "with the code that wrote it."
        )

    def noisy_input(self, latents: torch.Tensor, generator: torch.Generator):
        """(noise, t, t_next, x_t) for a batch of clean latents (B, C, F, h, w)."""
        from lightning_distill.stages.timesteps import draw_intervals

        t, t_next = draw_intervals(
            self.schedule,
            self.plan.student_steps,
            latents.shape[0],
            generator,
            self.extra_timesteps,
            self.extra_probability,
        )
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        t, t_next = t.to(latents.device), t_next.to(latents.device)
        return noise, t, t_next, self.schedule.add_noise(latents, noise, t)

    extra_timesteps: list[int] | None = None
    extra_probability: float = 0.0
