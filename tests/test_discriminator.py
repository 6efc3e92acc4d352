"""The discriminator: its backbone is the UNet's encoder and mid block, conditioned on the base model, its
heads give one logit per clip at toy and paper shapes, and training it never touches the student."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNetMotionModel

from lightning_distill.models.discriminator import MIN_GROUP_ELEMENTS, Discriminator, DiscriminatorHead
from lightning_distill.stages import gan_loss
from lightning_distill.toy.models import build_motion_adapter, build_unet


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    model = UNetMotionModel.from_unet2d(build_unet(0), build_motion_adapter(0))
    with torch.no_grad():  # the toy adapter starts as the identity; give its motion layers a voice
        for name, p in model.named_parameters():
            if "motion_modules" in name and name.endswith("proj_out.weight"):
                p.normal_(0, 0.05)
    return model.eval()


LATENTS = (8, 8, 8)  # (F, h, w) of the toy clips `inputs` makes


def inputs(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, 4, 8, 8, 8, generator=g),
        torch.randint(0, 1000, (batch,), generator=g),
        torch.randn(batch * 8, 77, 32, generator=g),
    )


def test_backbone_is_the_unets_encoder_and_mid_block(unet):
    x, t, states = inputs()
    captured = {}
    hook = unet.mid_block.register_forward_hook(lambda m, i, o: captured.setdefault("mid", o))
    with torch.no_grad():
        unet(x, t, encoder_hidden_states=states)
    hook.remove()
    discriminator = Discriminator.from_unet(unet, latent_shape=LATENTS, num_base_models=3).eval()
    with torch.no_grad():
        features = discriminator.features(x, t, states, torch.tensor([0, 2]))
    expected = captured["mid"].reshape(2, 8, *captured["mid"].shape[1:]).permute(0, 2, 1, 3, 4)
    torch.testing.assert_close(features, expected)
    with torch.no_grad():
        discriminator.base_model_embedding.weight.normal_()
        moved = discriminator.features(x, t, states, torch.tensor([0, 2]))
    assert not torch.allclose(moved, expected)


def test_heads_give_one_logit_per_clip_and_gradients_reach_everything(unet):
    discriminator = Discriminator.from_unet(unet, latent_shape=LATENTS, num_base_models=2)
    x, t, states = inputs()
    index = torch.tensor([0, 1])
    conditional = discriminator.conditional(x, x * 0.5, t, (t - 250).clamp(min=-1), states, index)
    unconditional = discriminator.unconditional(x, t, states, index)
    assert conditional.shape == (2,) and unconditional.shape == (2,)
    (conditional.sum() + unconditional.sum()).backward()
    missing = [n for n, p in discriminator.named_parameters() if p.grad is None]
    assert missing == []


@pytest.mark.parametrize("level", [0, 1])
def test_an_earlier_feature_level_reads_that_block_before_downsampling(unet, level):
    x, t, states = inputs()
    captured = {}
    block = unet.down_blocks[level]
    hook = block.motion_modules[-1].register_forward_hook(lambda m, i, o: captured.setdefault("out", o))
    with torch.no_grad():
        unet(x, t, encoder_hidden_states=states)
    hook.remove()
    discriminator = Discriminator.from_unet(
        unet, latent_shape=LATENTS, num_base_models=2, feature_level=level
    )
    assert discriminator.mid_block is None and len(discriminator.down_blocks) == level + 1
    with torch.no_grad():
        features = discriminator.features(x, t, states, torch.tensor([0, 1]))
    expected = captured["out"].reshape(2, 8, *captured["out"].shape[1:]).permute(0, 2, 1, 3, 4)
    torch.testing.assert_close(features, expected)
    assert features.shape[3:] == (8 // 2**level, 8 // 2**level)
    # Every parameter the backbone keeps is used (DDP rejects unused ones).
    index = torch.tensor([0, 1])
    conditional = discriminator.conditional(x, x * 0.5, t, (t - 250).clamp(min=-1), states, index)
    (conditional.sum() + discriminator.unconditional(x, t, states, index).sum()).backward()
    assert [n for n, p in discriminator.named_parameters() if p.grad is None] == []


def test_a_head_built_for_other_latents_says_so(unet):
    discriminator = Discriminator.from_unet(unet, num_base_models=1, latent_shape=(8, 16, 16))
    x, t, states = inputs()
    with pytest.raises(ValueError, match="latent_shape"):
        discriminator.unconditional(x, t, states, torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="feature_level"):
        Discriminator.from_unet(unet, latent_shape=LATENTS, num_base_models=1, feature_level=7)


@pytest.mark.parametrize("conditional", [True, False])
def test_real_and_fake_in_one_pass_equal_two_separate_judgements(unet, conditional):
    torch.manual_seed(0)  # the heads' initialisation and `fake`, whatever ran before
    discriminator = Discriminator.from_unet(unet, latent_shape=LATENTS, num_base_models=2)
    x, t, states = inputs(seed=1)
    real, fake = x * 0.5, torch.randn_like(x)
    t_next, index = (t - 250).clamp(min=-1), torch.tensor([1, 0])
    if conditional:
        separate = [discriminator.conditional(x, y, t, t_next, states, index) for y in (real, fake)]
    else:
        separate = [discriminator.unconditional(y, t_next, states, index) for y in (real, fake)]
    loss = gan_loss.discriminator_loss(*separate)
    loss.backward()
    gradients = {n: p.grad.clone() for n, p in discriminator.named_parameters() if p.grad is not None}
    discriminator.zero_grad(set_to_none=True)
    paired = discriminator.real_and_fake(x, real, fake, t, t_next, states, index, conditional=conditional)
    gan_loss.discriminator_loss(*paired).backward()
    for mine, theirs in zip(paired, separate, strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)
    for name, grad in gradients.items():  # the same sums in another order: equal to float32 rounding
        difference = (discriminator.get_parameter(name).grad - grad).norm()
        assert difference <= 5e-4 * grad.norm() + 1e-6, name


def test_paper_sized_mid_features_fit_the_head():
    head = DiscriminatorHead(2 * 1280, (16, 8, 8), channels=64)
    assert head(torch.randn(1, 2 * 1280, 16, 8, 8)).shape == (1,)
    with torch.device("meta"):  # the paper's width (1280, 40 channels per group) without its 1 GB of weights
        paper = DiscriminatorHead(2 * 1280, (16, 8, 8), channels=1280)
    assert sum(isinstance(m, torch.nn.Conv3d) for m in paper.modules()) == 4


def _normalised_values_per_group(head, in_channels):
    """{GroupNorm: values each of its groups normalises} for one clip through `head`."""
    seen = {}

    def count(module, _inputs, output):
        seen[module] = output[0].numel() // module.num_groups

    hooks = [m.register_forward_hook(count) for m in head.modules() if isinstance(m, torch.nn.GroupNorm)]
    head(torch.randn(1, in_channels, *head.feature_shape))
    for hook in hooks:
        hook.remove()
    return list(seen.values())


@pytest.mark.parametrize(
    ("channels", "shape", "blocks"),
    [(64, (8, 4, 4), 1), (64, (16, 8, 8), 2), (64, (8, 1, 1), 0), (256, (16, 8, 8), 3)],
)
def test_no_head_block_normalises_too_few_values(channels, shape, blocks):
    # The toy's level-1 head (64 channels, 2 per group) once ended in a GroupNorm over two values per
    # group, which erased what it read (models/discriminator.py, MIN_GROUP_ELEMENTS).
    head = DiscriminatorHead(channels, shape, channels)
    counts = _normalised_values_per_group(head, channels)
    assert len(counts) == blocks
    assert all(count >= MIN_GROUP_ELEMENTS for count in counts)


def _trained_and_judged(unet, make_fake, loss, steps, judge_seeds, conditional=True):
    """Train a toy (level-1) discriminator on clips (real) against `make_fake(clips, seed)` for `steps`
    Adam updates; return its (real, fake) logits on new batches of `judge_seeds`. Conditional: the clip
    itself stands for x_t."""
    torch.manual_seed(0)
    discriminator = Discriminator.from_unet(unet, latent_shape=LATENTS, num_base_models=1, feature_level=1)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-4, betas=(0.0, 0.99))
    index = torch.zeros(8, dtype=torch.long)

    def judged(seed):
        x, t, states = inputs(batch=8, seed=seed)
        return discriminator.real_and_fake(
            x, x, make_fake(x, seed), t, t, states, index, conditional=conditional
        )

    for step in range(steps):
        optimizer.zero_grad()
        gan_loss.discriminator_loss(*judged(100 + 2 * step), loss).backward()
        optimizer.step()
    with torch.no_grad():
        return [judged(seed) for seed in judge_seeds]


def test_the_toy_discriminator_learns_to_tell_clips_from_noisier_copies(unet):
    # What the degenerate head could not do: with 50 Adam steps it stayed near a coin (measured 0.54 after
    # 150 steps on the toy teacher's moves); the toy world's level-1 discriminator now separates them.
    def noisier(x, seed):
        return 0.7 * x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed + 1))

    ((real, fake),) = _trained_and_judged(unet, noisier, "non_saturating", 50, [7])
    assert gan_loss.accuracy(real, fake) >= 0.9


def test_a_relativistic_discriminator_ranks_pairs_that_differ_less_than_clips_do(unet):
    # A distillation stage's real and fake share x_t and differ by ~10% of the move, far less than clips
    # differ from each other: the toy 32 -> 8 stage's discriminator never found an absolute threshold with
    # the non-saturating loss (accuracy 0.50 at every rate tried), and ranks pairs once they are paired.
    # Here: real = a clip, fake = the same clip slightly smoothed over time (a one-move blur), judged
    # unconditionally, so that no x_t equal to the real clip can give the answer away.
    def smoothed(x, _seed):
        return 0.9 * x + 0.1 * (x.roll(1, dims=2) + x.roll(-1, dims=2)) / 2

    judged = _trained_and_judged(unet, smoothed, "relativistic", 40, [7, 9, 11], conditional=False)
    assert float(torch.stack([gan_loss.pair_accuracy(*logits) for logits in judged]).mean()) >= 0.9


def test_training_the_discriminator_leaves_the_student_alone(unet):
    before = {n: p.clone() for n, p in unet.named_parameters()}
    discriminator = Discriminator.from_unet(unet, latent_shape=LATENTS, num_base_models=1)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-2)
    x, t, states = inputs()
    discriminator.unconditional(x, t, states, torch.tensor([0, 0])).sum().backward()
    optimizer.step()
    assert all(torch.equal(p, before[n]) for n, p in unet.named_parameters())


def test_gradient_checkpointing_changes_nothing(unet):
    x, t, states = inputs()
    index = torch.tensor([0, 0])
    plain = Discriminator.from_unet(unet, latent_shape=LATENTS, num_base_models=1)
    checkpointed = Discriminator.from_unet(
        unet, latent_shape=LATENTS, num_base_models=1, gradient_checkpointing=True
    )
    checkpointed.load_state_dict(plain.state_dict())
    results = []
    for model in (plain, checkpointed):
        out = model.unconditional(x, t, states, index)
        out.sum().backward()
        results.append((out.detach(), model.conv_in.weight.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def test_losses_match_their_definitions():
    real, fake = torch.tensor([2.0, -1.0, 30.0]), torch.tensor([-3.0, 0.5, -40.0])
    sigmoid = torch.sigmoid
    assert torch.isfinite(gan_loss.discriminator_loss(real, fake))  # logits where log(sigmoid) underflows
    torch.testing.assert_close(
        gan_loss.discriminator_loss(real[:2], fake[:2]),
        -torch.log(sigmoid(real[:2])).mean() - torch.log(1 - sigmoid(fake[:2])).mean(),
    )
    torch.testing.assert_close(gan_loss.generator_loss(fake[:2]), -torch.log(sigmoid(fake[:2])).mean())
    assert float(gan_loss.accuracy(real, fake)) == pytest.approx(4 / 6)
    # Relativistic pairing: -log sigmoid(real - fake) for D, -log sigmoid(fake - real) for the student.
    torch.testing.assert_close(
        gan_loss.discriminator_loss(real, fake, "relativistic"), -torch.log(sigmoid(real - fake)).mean()
    )
    torch.testing.assert_close(
        gan_loss.generator_loss(fake, real, "relativistic"), -torch.log(sigmoid(fake - real)).mean()
    )
    assert float(gan_loss.pair_accuracy(real, fake)) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="adversarial loss 'hinge': use one of non_saturating, relativistic"):
        gan_loss.check_loss("hinge")
    drawn = gan_loss.draw_renoise_timesteps(
        4000, [10, 250, 500, 750], [5, 1, 1, 1], torch.Generator().manual_seed(0)
    )
    assert set(drawn.tolist()) == {10, 250, 500, 750}
    assert 0.55 < float((drawn == 10).float().mean()) < 0.7


def test_renoised_real_and_fake_share_the_timestep_the_discriminator_is_told():
    """t* was once drawn separately for real and fake, and D told the real one's: D could tell them apart
    by noise level alone, and the 4 -> 2 stage took the student's photo style from 0.73 to 0.00."""
    from types import SimpleNamespace

    from lightning_distill.diffusion.schedule import CLEAN, NoiseSchedule
    from lightning_distill.stages.adversarial import AdversarialStage

    schedule = NoiseSchedule()
    stage = SimpleNamespace(renoise_timesteps=[10, 250, 500, 750], renoise_weights=None, schedule=schedule)
    g = torch.Generator().manual_seed(0)
    real, fake, noise = (torch.randn(64, 4, 8, 8, 8, generator=g) for _ in range(3))
    t_next = torch.where(torch.arange(64) % 2 == 0, torch.tensor(CLEAN), torch.tensor(499))
    real_in, fake_in, judged = AdversarialStage._renoise(stage, real, fake, t_next, noise, g)
    clean = t_next == CLEAN
    assert set(judged[clean].tolist()) == {10, 250, 500, 750}
    assert torch.equal(judged[~clean], t_next[~clean])
    torch.testing.assert_close(real_in[clean], schedule.add_noise(real, noise, judged)[clean])
    torch.testing.assert_close(fake_in[clean], schedule.add_noise(fake, noise, judged)[clean])
    assert torch.equal(real_in[~clean], real[~clean]) and torch.equal(fake_in[~clean], fake[~clean])
    # The same destination for real and fake gives the same judged input: only content tells them apart.
    same_real, same_fake, _ = AdversarialStage._renoise(stage, real, real.clone(), t_next, noise, g)
    assert torch.equal(same_real, same_fake)
