"""The schedule maths against diffusers' own schedulers: one move is one Euler step and one DDIM step."""

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler

from lightning_distill.diffusion.schedule import CLEAN, NoiseSchedule

SHAPE = (2, 4, 3, 5, 6)  # (B, C, F, H, W)
LINEAR = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "linear"}


def euler_scheduler():
    return EulerDiscreteScheduler(**LINEAR, timestep_spacing="trailing")


def ddim_scheduler():
    return DDIMScheduler(**LINEAR, timestep_spacing="trailing", set_alpha_to_one=True, clip_sample=False)


def toy_eps(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A deterministic, nonlinear stand-in for a UNet: depends on the input and the timestep."""
    scale = (t.float() / 1000.0).reshape(-1, *([1] * (x_t.ndim - 1)))
    return torch.tanh(x_t) * (0.5 + scale) + 0.1 * torch.sin(3 * x_t)


def test_alpha_bar_is_diffusers_linear_schedule():
    schedule = NoiseSchedule()
    reference = DDPMScheduler(**LINEAR).alphas_cumprod
    assert torch.equal(schedule.alphas_cumprod, reference)
    assert schedule.alpha_bar(999).item() == pytest.approx(0.001579, abs=5e-7)
    assert schedule.alpha_bar(CLEAN).item() == 1.0
    assert schedule.sigma(CLEAN).item() == 0.0
    # SD1.5's own scaled_linear schedule ends elsewhere: the two must not be confused.
    scaled = DDPMScheduler(**{**LINEAR, "beta_schedule": "scaled_linear"}).alphas_cumprod[999].item()
    assert scaled == pytest.approx(0.00466, abs=5e-5)


@pytest.mark.parametrize("num_steps", [1, 2, 3, 4, 8, 32])
def test_trailing_timesteps_match_euler_and_ddim(num_steps):
    schedule = NoiseSchedule()
    ours = schedule.trailing_timesteps(num_steps)
    euler = euler_scheduler()
    euler.set_timesteps(num_steps)
    assert ours.tolist() == euler.timesteps.long().tolist()
    ddim = ddim_scheduler()
    ddim.set_timesteps(num_steps)
    assert ours.tolist() == ddim.timesteps.tolist()


def test_trailing_timesteps_known_values():
    schedule = NoiseSchedule()
    assert schedule.trailing_timesteps(1).tolist() == [999]
    assert schedule.trailing_timesteps(2).tolist() == [999, 499]
    assert schedule.trailing_timesteps(4).tolist() == [999, 749, 499, 249]
    assert schedule.trailing_timesteps(8).tolist() == [999, 874, 749, 624, 499, 374, 249, 124]
    with pytest.raises(ValueError, match="num_steps"):
        schedule.trailing_timesteps(0)


@pytest.mark.parametrize("num_steps", [1, 2, 3, 4, 8])
def test_each_move_is_one_euler_step(num_steps):
    schedule = NoiseSchedule()
    euler = euler_scheduler()
    euler.set_timesteps(num_steps)
    steps = schedule.trailing_timesteps(num_steps).tolist()
    gen = torch.Generator().manual_seed(num_steps)
    for i, t_now in enumerate(steps):
        t_next = steps[i + 1] if i + 1 < num_steps else CLEAN
        t = torch.full((SHAPE[0],), t_now)
        x_sigma = torch.randn(SHAPE, generator=gen) * float(euler.sigmas[i])
        eps = torch.randn(SHAPE, generator=gen)
        # Euler's model input is our DDPM-space latent: the two spaces differ by sqrt(alpha_bar).
        model_input = euler.scale_model_input(x_sigma, euler.timesteps[i])
        x_t = schedule.from_sigma_space(x_sigma, t)
        torch.testing.assert_close(model_input, x_t, rtol=1e-5, atol=1e-6)
        expected = euler.step(eps, euler.timesteps[i], x_sigma).prev_sample
        moved = schedule.move(x_t, eps, t, torch.full_like(t, t_next))
        torch.testing.assert_close(
            schedule.to_sigma_space(moved, torch.full_like(t, t_next)), expected, rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize("num_steps", [1, 2, 4, 8])
def test_each_move_is_one_ddim_step(num_steps):
    # DDIM goes from t to t - T/n, which is the next trailing timestep only when n divides T.
    schedule = NoiseSchedule()
    ddim = ddim_scheduler()
    ddim.set_timesteps(num_steps)
    gen = torch.Generator().manual_seed(10 + num_steps)
    steps = schedule.trailing_timesteps(num_steps).tolist()
    for i, t_now in enumerate(steps):
        t_next = steps[i + 1] if i + 1 < num_steps else CLEAN
        t = torch.full((SHAPE[0],), t_now)
        x_t = torch.randn(SHAPE, generator=gen)
        eps = torch.randn(SHAPE, generator=gen)
        expected = ddim.step(eps, t_now, x_t, eta=0.0).prev_sample
        moved = schedule.move(x_t, eps, t, torch.full_like(t, t_next))
        torch.testing.assert_close(moved, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_steps", [1, 2, 4, 8])
def test_n_moves_are_a_full_euler_and_ddim_loop(num_steps):
    schedule = NoiseSchedule(pure_noise_at_terminal=False)
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))

    euler = euler_scheduler()
    euler.set_timesteps(num_steps)
    sample = noise * euler.init_noise_sigma
    for t_now in euler.timesteps:
        model_input = euler.scale_model_input(sample, t_now)
        sample = euler.step(toy_eps(model_input, t_now.expand(SHAPE[0])), t_now, sample).prev_sample

    ddim = ddim_scheduler()
    ddim.set_timesteps(num_steps)
    # DDIM reads DDPM space, so the Euler start sigma_max * z becomes sqrt(1 - alpha_bar_T) * z.
    ddim_sample = schedule.terminal_latents(noise)
    for t_now in ddim.timesteps:
        ddim_sample = ddim.step(toy_eps(ddim_sample, t_now.expand(SHAPE[0])), t_now, ddim_sample).prev_sample

    x = schedule.terminal_latents(noise)
    steps = schedule.trailing_timesteps(num_steps).tolist()
    for t_now, t_next in zip(steps, [*steps[1:], CLEAN]):
        t = torch.full((SHAPE[0],), t_now)
        x = schedule.move(x, toy_eps(x, t), t, torch.full_like(t, t_next))

    torch.testing.assert_close(x, sample, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(x, ddim_sample, rtol=1e-4, atol=1e-4)


def test_moves_are_per_sample():
    schedule = NoiseSchedule()
    gen = torch.Generator().manual_seed(3)
    x_t, eps = torch.randn(SHAPE, generator=gen), torch.randn(SHAPE, generator=gen)
    t, t_next = torch.tensor([999, 249]), torch.tensor([499, CLEAN])
    batched = schedule.move(x_t, eps, t, t_next)
    for i in range(2):
        alone = schedule.move(x_t[i : i + 1], eps[i : i + 1], t[i : i + 1], t_next[i : i + 1])
        torch.testing.assert_close(batched[i : i + 1], alone, rtol=0, atol=0)
    assert not torch.allclose(batched[0], batched[1])


def test_teacher_moves_and_student_move_meet_on_exact_eps():
    """With the exact eps of one clean video, n moves of stride s and one move of stride n*s both land on
    add_noise(x0, eps, t - n*s): the target the distillation stages compare against is consistent."""
    schedule = NoiseSchedule()
    gen = torch.Generator().manual_seed(4)
    x0, noise = torch.randn(SHAPE, generator=gen), torch.randn(SHAPE, generator=gen)
    t = torch.tensor([749, 499])
    x_t = schedule.add_noise(x0, noise, t)
    stride, n = 125, 2

    def exact_eps(x, t_now):
        return schedule.eps_from_x0(x, x0, t_now)

    teacher = x_t
    t_now = t
    for _ in range(n):
        t_next = schedule.next_timestep(t_now, stride)
        teacher = schedule.move(teacher, exact_eps(teacher, t_now), t_now, t_next)
        t_now = t_next
    target_t = schedule.next_timestep(t, n * stride)
    assert torch.equal(t_now, target_t)
    student = schedule.move(x_t, exact_eps(x_t, t), t, target_t)
    expected = schedule.add_noise(x0, noise, target_t)
    torch.testing.assert_close(teacher, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(student, expected, rtol=1e-4, atol=1e-4)
    # A move to CLEAN returns the predicted x0.
    clean = schedule.move(x_t, exact_eps(x_t, t), t, torch.full_like(t, CLEAN))
    torch.testing.assert_close(clean, x0, rtol=1e-4, atol=1e-4)


def test_next_timestep_floors_at_clean():
    schedule = NoiseSchedule()
    assert schedule.next_timestep(torch.tensor([999, 249, 124]), 250).tolist() == [749, CLEAN, CLEAN]


@pytest.mark.parametrize("pure_noise_at_terminal", [True, False])
def test_add_noise_matches_ddpm_except_pure_noise_at_terminal(pure_noise_at_terminal):
    schedule = NoiseSchedule(pure_noise_at_terminal=pure_noise_at_terminal)
    ddpm = DDPMScheduler(**LINEAR)
    gen = torch.Generator().manual_seed(5)
    x0, noise = torch.randn(SHAPE, generator=gen), torch.randn(SHAPE, generator=gen)
    t = torch.tensor([999, 500])
    ours = schedule.add_noise(x0, noise, t)
    reference = ddpm.add_noise(x0, noise, t)
    torch.testing.assert_close(ours[1], reference[1], rtol=1e-6, atol=1e-6)
    if pure_noise_at_terminal:
        assert torch.equal(ours[0], noise[0])
        assert torch.equal(schedule.terminal_latents(noise), noise)
    else:
        torch.testing.assert_close(ours[0], reference[0], rtol=1e-6, atol=1e-6)
        # Without the rule, sampling starts where diffusers' DDIM starts: sqrt(1 - alpha_bar_T) * z.
        factor = (1 - schedule.alpha_bar(999)).sqrt()
        assert factor.item() == pytest.approx(0.99921, abs=1e-5)
        torch.testing.assert_close(schedule.terminal_latents(noise), noise * factor)


def test_conversions_invert_and_keep_dtype():
    schedule = NoiseSchedule()
    gen = torch.Generator().manual_seed(6)
    x0, eps = torch.randn(SHAPE, generator=gen), torch.randn(SHAPE, generator=gen)
    t = torch.tensor([10, 900])
    x_t = schedule.add_noise(x0, eps, t)
    torch.testing.assert_close(schedule.x0_from_eps(x_t, eps, t), x0, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(schedule.eps_from_x0(x_t, x0, t), eps, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(schedule.from_sigma_space(schedule.to_sigma_space(x_t, t), t), x_t)
    half = schedule.move(x_t.bfloat16(), eps.bfloat16(), t, torch.tensor([CLEAN, 500]))
    assert half.dtype == torch.bfloat16


def test_move_carries_gradients_to_eps():
    schedule = NoiseSchedule()
    eps = torch.randn(SHAPE, requires_grad=True)
    t = torch.tensor([999, 499])
    schedule.move(torch.randn(SHAPE), eps, t, t - 250).sum().backward()
    assert eps.grad is not None and torch.isfinite(eps.grad).all()


def test_bad_schedule_is_rejected():
    with pytest.raises(ValueError, match="beta_start"):
        NoiseSchedule(beta_start=0.02, beta_end=0.012)


@pytest.mark.parametrize("space", ["destination", "eps", "x0", "v"])
def test_move_error_scale_turns_a_destination_gap_into_the_gap_in_each_space(space):
    """Two moves from the same x_t differ only in eps; the scale turns the gap between their landing
    points into the gap between the eps, x0 or v they imply (the MSE stage's loss_space)."""
    schedule = NoiseSchedule()
    gen = torch.Generator().manual_seed(7)
    x_t, eps_1, eps_2 = (torch.randn(SHAPE, generator=gen) for _ in range(3))
    t, t_next = torch.tensor([999, 249]), torch.tensor([968, CLEAN])
    gap = schedule.move(x_t, eps_1, t, t_next) - schedule.move(x_t, eps_2, t, t_next)
    alpha_bar = schedule.alpha_bar(t, like=x_t)
    x0_1, x0_2 = schedule.x0_from_eps(x_t, eps_1, t), schedule.x0_from_eps(x_t, eps_2, t)
    expected = {
        "destination": gap,
        "eps": eps_1 - eps_2,
        "x0": x0_1 - x0_2,
        # v = sqrt(a) eps - sqrt(1 - a) x0
        "v": alpha_bar.sqrt() * (eps_1 - eps_2) - (1 - alpha_bar).sqrt() * (x0_1 - x0_2),
    }[space]
    scaled = schedule.move_error_scale(t, t_next, space, like=x_t) * gap
    torch.testing.assert_close(scaled.abs(), expected.abs(), rtol=1e-3, atol=1e-3)


def test_move_error_scale_rejects_an_unknown_space():
    with pytest.raises(ValueError, match="space must be one of"):
        NoiseSchedule().move_error_scale(torch.tensor([999]), torch.tensor([968]), "sigma", torch.zeros(1))
