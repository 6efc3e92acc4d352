"""The released AnimateLCM in the paper world (``eval.baselines.animatelcm``), on tiny files the tests write.

The AnimateLCM folder is what ``MotionAdapter.save_pretrained`` writes (config.json + weights), as in the
Hugging Face repository; the LCM-LoRA is a kohya-style SD1.5 UNet LoRA (``lora_unet_*.lora_down.weight``,
``.lora_up.weight``, ``.alpha``), the layout AnimateLCM's own loader reads, over the layers the LCM-LoRAs
adapt (attention, feed-forward, projections, resnet convolutions and time projections, resamplers).
"""

from __future__ import annotations

import pytest
import torch
from diffusers import AnimateDiffPipeline, LCMScheduler, PNDMScheduler, StableDiffusionPipeline
from safetensors.torch import save_file
from test_diffusers_compat import SD15_SCHEDULER_CONFIG, clearly_differ, one_thread  # noqa: F401
from tiny_models import (
    TINY_BLOCK_OUT_CHANNELS,
    clip_tokenizer,
    randomize_,
    tiny_motion_adapter,
    tiny_text_encoder,
    tiny_unet2d,
    tiny_vae,
)

from eval.baselines.animatelcm import (
    ADAPTER_KEY,
    LORA_ADAPTER_NAME,
    LORA_FILENAME,
    LORA_KEY,
    PUBLISHED_AT,
    AnimateLCMFormatError,
    animatelcm_scheduler,
    generate_animatelcm,
    load_animatelcm,
)
from eval.weights import MissingWeightsError
from lightning_distill.diffusion.schedule import NoiseSchedule

FRAMES = 4
PROMPTS = ["a red circle moving left", "a blue square moving up", "a green star spinning"]
RANK, ALPHA = 4, 2.0  # diffusers scales a kohya layer by alpha / rank
LCM_LORA_LAYERS = (
    "to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
    "conv1", "conv2", "conv_shortcut", "time_emb_proj", "downsamplers.0.conv", "upsamplers.0.conv",
)  # fmt: skip


def lcm_lora_targets(unet) -> dict[str, torch.nn.Module]:
    return {
        name: module
        for name, module in unet.named_modules()
        if name.startswith(("down_blocks", "mid_block", "up_blocks"))
        and name.endswith(LCM_LORA_LAYERS)
        and isinstance(module, torch.nn.Linear | torch.nn.Conv2d)
    }


def random_lcm_lora(seed: int = 7) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module name -> (down, up) in kohya shapes: Linear (r, in) / (out, r); Conv2d (r, in, k, k) / (out, r, 1, 1)."""
    generator = torch.Generator().manual_seed(seed)
    lora = {}
    for name, module in lcm_lora_targets(tiny_unet2d(0)).items():
        if isinstance(module, torch.nn.Linear):
            shapes = (RANK, module.in_features), (module.out_features, RANK)
        else:
            shapes = (RANK, module.in_channels, *module.kernel_size), (module.out_channels, RANK, 1, 1)
        lora[name] = tuple(torch.randn(shape, generator=generator) * 0.3 for shape in shapes)
    return lora


def kohya_file(lora: dict, path, text_encoder_layers: dict | None = None) -> None:
    """UNet layers by module name; text-encoder layers by their kohya name (after ``lora_te_``)."""
    stems = {"lora_unet_" + name.replace(".", "_"): pair for name, pair in lora.items()}
    stems |= {"lora_te_" + name: pair for name, pair in (text_encoder_layers or {}).items()}
    tensors = {}
    for stem, (down, up) in stems.items():
        tensors |= {f"{stem}.lora_down.weight": down, f"{stem}.lora_up.weight": up}
        tensors[f"{stem}.alpha"] = torch.tensor(ALPHA)
    save_file(tensors, str(path))


@pytest.fixture(scope="module")
def lcm_lora():
    return random_lcm_lora()


@pytest.fixture(scope="module")
def release(tmp_path_factory, lcm_lora):
    """The AnimateLCM folder as its repository holds it: MotionAdapter files plus the LCM-LoRA."""
    folder = tmp_path_factory.mktemp("AnimateLCM")
    tiny_motion_adapter(
        "v2", seed=2, block_out_channels=TINY_BLOCK_OUT_CHANNELS, motion_layers_per_block=1
    ).save_pretrained(folder)
    kohya_file(lcm_lora, folder / LORA_FILENAME)
    return folder


def base_components() -> dict:
    return {
        "vae": randomize_(tiny_vae(0), seed=0, std=0.2),  # see test_diffusers_compat.base
        "text_encoder": tiny_text_encoder(0),
        "tokenizer": clip_tokenizer(),
        "unet": tiny_unet2d(0),
        "scheduler": PNDMScheduler(**SD15_SCHEDULER_CONFIG),
    }


def generate(pipe, steps: int = 4, **options) -> torch.Tensor:
    options = {"num_frames": FRAMES, "progress": False, **options}
    return generate_animatelcm(pipe, options.pop("prompts", PROMPTS[:1]), steps, **options)


def test_lcm_scheduler_gives_the_published_timesteps_on_animatediff_betas():
    for scheduler in (
        animatelcm_scheduler(),
        animatelcm_scheduler(PNDMScheduler(**SD15_SCHEDULER_CONFIG).config),
    ):
        assert isinstance(scheduler, LCMScheduler) and scheduler.config.original_inference_steps == 50
        scheduler.set_timesteps(4)
        assert scheduler.timesteps.tolist() == [999, 759, 499, 259]
        scheduler.set_timesteps(1)
        assert scheduler.timesteps.tolist() == [999]
        expected = NoiseSchedule().alpha_bar(torch.arange(1000))
        torch.testing.assert_close(scheduler.alphas_cumprod, expected, rtol=1e-5, atol=1e-7)


def test_load_animatelcm_runs_as_the_model_card_and_applies_the_lora_at_its_weight(release, lcm_lora):
    components = base_components()
    caller_unet = {k: v.clone() for k, v in components["unet"].state_dict().items()}
    pipe = load_animatelcm(components, release)
    assert isinstance(pipe, AnimateDiffPipeline) and isinstance(pipe.scheduler, LCMScheduler)
    assert pipe.scheduler.config.beta_schedule == "linear"
    saved = tiny_motion_adapter(
        "v2", seed=2, block_out_channels=TINY_BLOCK_OUT_CHANNELS, motion_layers_per_block=1
    )
    motion = {k: v for k, v in pipe.unet.state_dict().items() if ".motion_modules." in k}
    assert all(torch.equal(motion[k], v) for k, v in saved.state_dict().items() if k in motion)
    adapted = {n: m for n, m in pipe.unet.named_modules() if LORA_ADAPTER_NAME in getattr(m, "lora_A", {})}
    assert sorted(adapted) == sorted(lcm_lora)
    assert all(m.scaling[LORA_ADAPTER_NAME] == pytest.approx(0.8 * ALPHA / RANK) for m in adapted.values())
    unchanged = components["unet"].state_dict()
    assert set(unchanged) == set(caller_unet) and all(
        torch.equal(unchanged[k], v) for k, v in caller_unet.items()
    )

    # The same video from a pipeline whose image weights hold W + 0.8 * alpha / rank * up @ down.
    merged_components = base_components()
    with torch.no_grad():
        for name, (down, up) in lcm_lora.items():
            weight = merged_components["unet"].get_submodule(name).weight
            weight += (
                0.8
                * ALPHA
                / RANK
                * torch.einsum("or,ri...->oi...", up.flatten(1), down).reshape(weight.shape)
            )
    merged = AnimateDiffPipeline(
        **{k: v for k, v in merged_components.items() if k != "scheduler"},
        motion_adapter=saved,
        scheduler=animatelcm_scheduler(merged_components["scheduler"].config),
    )
    video = generate(pipe)
    torch.testing.assert_close(video, generate(merged), rtol=1e-4, atol=1e-4)
    assert clearly_differ(video, generate(load_animatelcm(base_components(), release, lora_scale=0.0)))


def test_generate_returns_videos_in_range_independent_of_the_batch(release):
    pipe = load_animatelcm(base_components(), release)
    videos = generate(pipe, prompts=PROMPTS, batch_size=2)
    assert videos.shape == (3, 3, FRAMES, 16, 16) and videos.dtype == torch.float32
    assert torch.isfinite(videos).all() and videos.min() >= -1 and videos.max() <= 1
    torch.testing.assert_close(videos, generate(pipe, prompts=PROMPTS, batch_size=3), rtol=0, atol=1e-5)
    torch.testing.assert_close(
        videos[1:], generate(pipe, prompts=PROMPTS[1:], first_index=1), rtol=0, atol=1e-5
    )
    assert clearly_differ(videos[:1], generate(pipe, seed=1))
    guided = generate(pipe, guidance_scale=2.0, negative_prompt="bad quality")
    # The tiny text encoder barely moves the UNet, so guidance changes little; it must run and change something.
    assert guided.shape == (1, 3, FRAMES, 16, 16) and torch.isfinite(guided).all()
    assert not torch.equal(videos[:1], guided)
    with pytest.raises(ValueError, match="num_steps must be 1 to 50"):
        generate(pipe, steps=51)
    with pytest.raises(ValueError, match="guidance_scale must be >= 1"):
        generate(pipe, guidance_scale=0.5)


def test_a_local_base_model_folder_loads_like_its_components(release, tmp_path):
    components = base_components()
    StableDiffusionPipeline(
        **components, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    ).save_pretrained(tmp_path / "tiny_sd15")
    from_folder = load_animatelcm(tmp_path / "tiny_sd15", release)
    assert isinstance(from_folder.scheduler, LCMScheduler) and from_folder.scheduler.config.steps_offset == 1
    torch.testing.assert_close(
        generate(from_folder), generate(load_animatelcm(components, release)), rtol=1e-5, atol=1e-5
    )


def test_missing_files_name_the_path_where_published_and_the_config_key(release, tmp_path):
    components = base_components()
    cases = [
        (tmp_path / "absent", None, ADAPTER_KEY),
        (tmp_path, None, ADAPTER_KEY),  # a folder without config.json
        (release, tmp_path / "absent_lora.safetensors", LORA_KEY),
    ]
    for adapter_dir, lora_path, key in cases:
        with pytest.raises(MissingWeightsError) as info:
            load_animatelcm(components, adapter_dir, lora_path)
        message = str(info.value)
        assert PUBLISHED_AT in message and f"{key}=" in message and str(tmp_path) in message
    with pytest.raises(AnimateLCMFormatError, match=r"lightning_distill\.export"):
        load_animatelcm(components, release / "config.json")
    with pytest.raises(FileNotFoundError, match=r"model_index\.json"):
        load_animatelcm(tmp_path / "no_base_model", release)


def test_a_lora_for_another_architecture_is_refused_not_silently_dropped(release, lcm_lora, tmp_path):
    foreign = dict(lcm_lora)
    down, up = foreign["down_blocks.0.attentions.0.proj_in"]
    foreign["down_blocks.7.attentions.0.proj_in"] = (
        down.clone(),
        up.clone(),
    )  # no such block in an SD1.5-layout UNet
    kohya_file(foreign, tmp_path / "foreign.safetensors")
    with pytest.raises(AnimateLCMFormatError, match=f"of its {len(foreign)} LoRA layers"):
        load_animatelcm(base_components(), release, tmp_path / "foreign.safetensors")


def test_a_text_encoder_lora_goes_into_a_copy_not_the_callers_text_encoder(release, lcm_lora, tmp_path):
    generator = torch.Generator().manual_seed(9)
    text_layers = {
        f"text_model_encoder_layers_0_self_attn_{projection}": (
            torch.randn(RANK, 32, generator=generator),
            torch.randn(32, RANK, generator=generator),
        )
        for projection in ("q_proj", "k_proj", "v_proj", "out_proj")
    }
    kohya_file(lcm_lora, tmp_path / "with_text.safetensors", text_layers)
    components = base_components()
    pipe = load_animatelcm(components, release, tmp_path / "with_text.safetensors")
    adapted = [m for m in pipe.text_encoder.modules() if LORA_ADAPTER_NAME in getattr(m, "lora_A", {})]
    assert len(adapted) == 4 and pipe.text_encoder is not components["text_encoder"]
    assert not any(hasattr(m, "lora_A") for m in components["text_encoder"].modules())
