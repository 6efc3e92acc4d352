"""An exported student runs in diffusers as the AnimateDiff-Lightning model card runs it (issue 5, section 6).

Every test writes a tiny student the way a distillation run exports it (``write_motion_module(...,
layout="diffusers")``, one ``.safetensors`` file), loads it as the model card does
(``MotionAdapter(**config).load_state_dict(load_file(path))``) and runs a diffusers pipeline on tiny
SD1.5-architecture models: text-to-video, video-to-video, ControlNet, and a motion LoRA on top.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import (
    AnimateDiffControlNetPipeline,
    AnimateDiffPipeline,
    AnimateDiffVideoToVideoPipeline,
    ControlNetModel,
    EulerDiscreteScheduler,
    MotionAdapter,
    PNDMScheduler,
)
from PIL import Image
from safetensors.torch import load_file
from tiny_models import (
    TINY_BLOCK_OUT_CHANNELS,
    clip_tokenizer,
    randomize_,
    tiny_motion_adapter,
    tiny_text_encoder,
    tiny_unet2d,
    tiny_vae,
)

from lightning_distill.diffusion.samplers import euler_sample, motion_unet_denoiser
from lightning_distill.diffusion.schedule import NoiseSchedule
from lightning_distill.models.motion_lora import (
    MotionLoRAFormatError,
    file_key,
    motion_lora_targets,
    read_motion_lora,
    write_motion_lora,
)
from lightning_distill.models.motion_module_io import from_motion_adapter, write_motion_module
from lightning_distill.models.motion_module_keys import diffusers_to_original_keys

FRAMES = 4
LATENT_SHAPE = (1, 4, FRAMES, 8, 8)  # tiny UNet sample_size 8; the tiny VAE doubles it to 16x16 pixels
PROMPT = "a red circle moving left"
SD15_SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
}
"""SD1.5's ``scheduler/scheduler_config.json`` (a PNDMScheduler), which every SD1.5-family folder carries."""


def lightning_scheduler() -> EulerDiscreteScheduler:
    """The model card's scheduler: ``from_config`` of the base model's, so beta_start/beta_end are SD1.5's
    (EulerDiscreteScheduler's own defaults, 0.0001 to 0.02, would give sigma_max 157 instead of 25)."""
    base_config = PNDMScheduler(**SD15_SCHEDULER_CONFIG).config
    return EulerDiscreteScheduler.from_config(
        base_config, timestep_spacing="trailing", beta_schedule="linear"
    )


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # On the shared 2-core machine two OpenMP threads spin at every barrier while the other core is busy:
    # one tiny pipeline call measured 14 s with two threads and 0.05 s with one.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def trained_student() -> MotionAdapter:
    """The student's motion module: a tiny AnimateDiff-v2-shaped adapter that fits the tiny image UNet."""
    return tiny_motion_adapter(
        "v2", seed=1, block_out_channels=TINY_BLOCK_OUT_CHANNELS, motion_layers_per_block=1
    )


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """(path, config) of a tiny student exported as the Lightning ``*_diffusers.safetensors`` files are."""
    checkpoint = from_motion_adapter(trained_student())
    path = tmp_path_factory.mktemp("student") / "tiny_lightning_4step_diffusers.safetensors"
    return write_motion_module(checkpoint, path, layout="diffusers"), checkpoint.config


@pytest.fixture(scope="module")
def base():
    # tiny_vae's weights (std 0.05) make its encoder output nearly the same latents for any video; at std
    # 0.2 the input video reaches the latents, which video-to-video needs to be tested at all.
    vae = randomize_(tiny_vae(0), seed=0, std=0.2)
    return {"vae": vae, "text_encoder": tiny_text_encoder(0), "tokenizer": clip_tokenizer()}


@pytest.fixture(scope="module")
def embeds(base):
    """(1, 77, 32) prompt embeddings: the pipelines' clip_skip path breaks on transformers 5 (DIFFUSERS.md)."""
    ids = base["tokenizer"]([PROMPT], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        return base["text_encoder"](ids)[0]


def load_student(student) -> MotionAdapter:
    """The model card's loading; a tiny adapter needs its config where the card uses the defaults."""
    path, config = student
    adapter = MotionAdapter(**config)
    adapter.load_state_dict(load_file(str(path)))
    return adapter.eval()


def make_pipeline(pipeline_class, base, student, **extra):
    pipe = pipeline_class(
        **base,
        unet=tiny_unet2d(0),
        motion_adapter=load_student(student),
        scheduler=lightning_scheduler(),
        **extra,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def noise(seed: int = 0) -> torch.Tensor:
    return torch.randn(LATENT_SHAPE, generator=torch.Generator().manual_seed(seed))


def frames_of(seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(FRAMES)]


def run(pipe, embeds, steps=4, **kwargs) -> torch.Tensor:
    """Frames (1, F, 3, H, W) in [0, 1] (output_type="pt"), or latents with output_type="latent"."""
    kwargs.setdefault("output_type", "pt")
    if "video" not in kwargs:  # video-to-video takes its frame count from the input video
        kwargs["num_frames"] = FRAMES
    with torch.no_grad():
        return pipe(prompt_embeds=embeds, num_inference_steps=steps, guidance_scale=1.0, **kwargs).frames


def test_exported_student_loads_strictly_as_the_model_card_does(student):
    path, config = student
    reference = MotionAdapter(**config).state_dict()
    loaded = load_student(student).state_dict()
    assert set(load_file(str(path))) == set(reference)
    assert all(torch.equal(loaded[k], v) for k, v in trained_student().state_dict().items())


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_student_runs_in_animatediff_pipeline_at_its_step_count(base, student, embeds, steps):
    pipe = make_pipeline(AnimateDiffPipeline, base, student)
    frames = run(pipe, embeds, steps=steps, latents=noise())
    assert frames.shape == (1, FRAMES, 3, 16, 16)
    assert torch.isfinite(frames).all() and frames.min() >= 0 and frames.max() <= 1
    expected = NoiseSchedule().trailing_timesteps(steps).float()
    assert torch.equal(pipe.scheduler.timesteps, expected), (
        "trailing Euler timesteps differ from the project's"
    )


def test_pipeline_sample_equals_the_project_euler_sampler(base, student, embeds):
    pipe = make_pipeline(AnimateDiffPipeline, base, student)
    z = noise(1)
    latents = run(pipe, embeds, latents=z, output_type="latent")
    # diffusers starts at sqrt(1 - alpha_bar_T) z, the plain formula (no pure-noise rule at inference).
    ours = euler_sample(
        motion_unet_denoiser(pipe.unet),
        z,
        embeds,
        num_steps=4,
        schedule=NoiseSchedule(pure_noise_at_terminal=False),
    )
    assert latents.shape == LATENT_SHAPE
    torch.testing.assert_close(latents, ours, rtol=1e-4, atol=1e-5)


def test_prompt_text_through_the_offline_tokenizer_equals_prompt_embeds(base, student, embeds):
    pipe = make_pipeline(AnimateDiffPipeline, base, student)
    with torch.no_grad():
        from_text = pipe(
            prompt=PROMPT, num_inference_steps=2, guidance_scale=1.0, num_frames=FRAMES,
            latents=noise(), output_type="latent",
        ).frames  # fmt: skip
    torch.testing.assert_close(from_text, run(pipe, embeds, steps=2, latents=noise(), output_type="latent"))


def clearly_differ(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Differ by more than 0.1% of their scale: latents (before decoding clamps them), or frames of a VAE
    whose decoder carries its latents through."""
    return bool((a - b).abs().max() > 1e-3 * a.abs().max())


def test_student_runs_video_to_video_and_follows_the_input_video(base, student, embeds):
    pipe = make_pipeline(AnimateDiffVideoToVideoPipeline, base, student)

    def v2v(video_seed: int, output_type: str = "latent") -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        video = frames_of(video_seed)
        return run(pipe, embeds, video=video, strength=0.5, generator=generator, output_type=output_type)

    frames = v2v(0, output_type="pt")
    assert frames.shape == (1, FRAMES, 3, 16, 16) and torch.isfinite(frames).all()
    first, again, other = v2v(0), v2v(0), v2v(1)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert clearly_differ(first, other), "the output ignores the input video"


def test_controlnet_conditioning_changes_the_output_and_scale_zero_does_not(base, student, embeds):
    # from_unet copies the UNet encoder and zero-initialises the output convolutions (no effect at all
    # until trained): randomise them. Two conditioning-embedding blocks: 16x16 frames -> 8x8 latents.
    controlnet = randomize_(
        ControlNetModel.from_unet(tiny_unet2d(0), conditioning_embedding_out_channels=(16, 32)),
        seed=3,
        std=0.2,
    ).eval()
    pipe = make_pipeline(AnimateDiffControlNetPipeline, base, student, controlnet=controlnet)

    def with_control(frames_seed: int, scale: float, output_type: str = "latent") -> torch.Tensor:
        return run(
            pipe, embeds, latents=noise(), conditioning_frames=frames_of(frames_seed),
            controlnet_conditioning_scale=scale, output_type=output_type,
        )  # fmt: skip

    frames = with_control(10, 1.0, output_type="pt")
    assert frames.shape == (1, FRAMES, 3, 16, 16) and torch.isfinite(frames).all()
    full_a, full_b = with_control(10, 1.0), with_control(11, 1.0)
    zero_a, zero_b = with_control(10, 0.0), with_control(11, 0.0)
    plain = run(
        make_pipeline(AnimateDiffPipeline, base, student), embeds, latents=noise(), output_type="latent"
    )
    assert clearly_differ(full_a, full_b), "changing the conditioning frames changed nothing"
    torch.testing.assert_close(zero_a, zero_b, rtol=0, atol=0)
    torch.testing.assert_close(zero_a, plain, rtol=1e-5, atol=1e-4)


def random_motion_lora(model, rank: int = 4, seed: int = 5):
    generator = torch.Generator().manual_seed(seed)
    lora = {}
    for target in motion_lora_targets(model):
        layer = model.get_submodule(target)
        down = torch.randn(rank, layer.in_features, generator=generator) * 0.2
        lora[target] = (down, torch.randn(layer.out_features, rank, generator=generator) * 0.2)
    return lora


def test_motion_lora_in_diffusers_format_loads_on_top_and_scales(base, student, embeds, tmp_path):
    pipe = make_pipeline(AnimateDiffPipeline, base, student)
    targets = motion_lora_targets(pipe.unet)
    # q, k, v, out of attn1 and attn2 in each of 7 temporal transformers (2 down, 1 mid, 2 + 2 up)
    assert len(targets) == 8 * 7
    lora = random_motion_lora(pipe.unet)
    path = write_motion_lora(lora, tmp_path / "motion_lora_tiny_zoom.safetensors")
    assert file_key(targets[0], "down") in load_file(str(path))
    without = run(pipe, embeds, latents=noise(), output_type="latent")

    pipe.load_lora_weights(str(tmp_path), weight_name=path.name, adapter_name="zoom", local_files_only=True)
    adapted = [name for name, m in pipe.unet.named_modules() if "zoom" in getattr(m, "lora_A", {})]
    assert sorted(adapted) == sorted(targets), "some LoRA tensors did not reach their projection"
    pipe.set_adapters(["zoom"], [0.0])
    at_0 = run(pipe, embeds, latents=noise(), output_type="latent")
    torch.testing.assert_close(at_0, without, rtol=1e-6, atol=1e-6)
    pipe.set_adapters(["zoom"], [0.8])
    at_08 = run(pipe, embeds, latents=noise(), output_type="latent")
    assert clearly_differ(at_08, without)
    assert torch.isfinite(run(pipe, embeds, latents=noise())).all()

    # The file carries no alpha: weight 0.8 must mean W + 0.8 * up @ down on exactly the named layers.
    merged = make_pipeline(AnimateDiffPipeline, base, student)
    with torch.no_grad():
        for target, (down, up) in lora.items():
            merged.unet.get_submodule(target).weight += 0.8 * up @ down
    expected = run(merged, embeds, latents=noise(), output_type="latent")
    torch.testing.assert_close(at_08, expected, rtol=1e-4, atol=1e-3)


def test_original_layout_motion_lora_reads_as_the_diffusers_file(student, tmp_path):
    lora = random_motion_lora(load_student(student), rank=2)
    diffusers_path = write_motion_lora(lora, tmp_path / "zoom.safetensors")
    original = {}
    for key, tensor in load_file(str(diffusers_path)).items():
        stem, tail = key.removeprefix("unet.").split(".processor.")
        (original_stem,) = diffusers_to_original_keys(stem)
        original[f"{original_stem}.processor.{tail}"] = tensor
    assert any(".temporal_transformer." in k and ".attention_blocks.1." in k for k in original)
    torch.save({"state_dict": original}, tmp_path / "v2_lora_TinyZoom.ckpt")

    from_original = read_motion_lora(tmp_path / "v2_lora_TinyZoom.ckpt")
    assert set(from_original) == set(lora)
    for target, (down, up) in lora.items():
        assert torch.equal(from_original[target][0], down) and torch.equal(from_original[target][1], up)


def test_bad_motion_lora_files_give_one_clear_error(tmp_path):
    target = "down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q"
    down_only = {file_key(target, "down"): torch.zeros(2, 8)}
    torch.save(down_only, tmp_path / "half.ckpt")
    with pytest.raises(MotionLoRAFormatError, match=r"to_q_lora\.up\.weight' is missing"):
        read_motion_lora(tmp_path / "half.ckpt")
    torch.save(
        {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(2, 8)},
        tmp_path / "image.pt",
    )
    with pytest.raises(MotionLoRAFormatError, match="not a motion-LoRA tensor"):
        read_motion_lora(tmp_path / "image.pt")
    torch.save({"state_dict": {"x": torch.zeros(1)}, "callback": print}, tmp_path / "pickled.ckpt")
    with pytest.raises(MotionLoRAFormatError, match="pickle holding more than tensors"):
        read_motion_lora(tmp_path / "pickled.ckpt")
    with pytest.raises(FileNotFoundError, match=r"huggingface\.co/guoyww"):
        read_motion_lora(tmp_path / "absent.safetensors")
