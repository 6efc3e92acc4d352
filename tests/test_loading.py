"""Loading base models from local files: diffusers folders, the toy teacher's folder (shared VAE and text
encoder), pickles only with weights_only, one clear error per bad path, and never the network."""

from __future__ import annotations

import socket

import pytest
import torch
from tiny_models import tiny_text_encoder, tiny_unet2d, tiny_vae

from lightning_distill.models.base_model import BaseModelSpec
from lightning_distill.models.loading import BaseModelLoadError, load_base_model
from lightning_distill.toy.models import build_text_encoder, build_unet, build_vae
from lightning_distill.toy.teacher.folder import save_component


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the loader reached for the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def toy_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy_teacher")
    save_component(build_vae(0), folder, "vae")
    save_component(build_text_encoder(0), folder, "text_encoder")
    save_component(build_unet(0), folder, "unet")
    from peft import LoraConfig, get_peft_model

    from lightning_distill.toy.models import STYLE_LORA_CONFIG

    for seed, style in enumerate(("flat", "toon")):
        lora = get_peft_model(build_unet(0), LoraConfig(**STYLE_LORA_CONFIG))
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # peft starts B at zero; a trained style LoRA is not
            for name, p in lora.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
        save_component(lora, folder / "unet_lora", style)
    return folder


def toy_spec(folder, style):
    return BaseModelSpec(name=f"toy_{style}", kind="toy", path=str(folder), style=style)


def test_toy_members_share_vae_and_text_encoder_but_not_unets(toy_folder):
    flat, toon = load_base_model(toy_spec(toy_folder, "flat")), load_base_model(toy_spec(toy_folder, "toon"))
    base = load_base_model(toy_spec(toy_folder, "base"))
    assert flat.vae is toon.vae and flat.text_encoder is toon.text_encoder

    def conv(model):
        return model.unet.down_blocks[0].resnets[0].conv1.weight

    assert not torch.equal(conv(flat), conv(toon)) and not torch.equal(conv(flat), conv(base))  # LoRAs merged
    assert not any(p.requires_grad for p in flat.unet.parameters())
    states = flat.encode_prompts(["a red circle moving left", ""])
    assert states.shape == (2, 77, 32)
    video = torch.rand(2, 3, 8, 32, 32) * 2 - 1
    latents = flat.encode_video(video)
    assert latents.shape == (2, 4, 8, 8, 8) and flat.vae_scale_factor == 4
    assert flat.decode_latents(latents).shape == video.shape
    assert base.unet is not flat.unet


def test_diffusers_folder(tmp_path):
    folder = tmp_path / "sd15"
    tiny_unet2d(0).save_pretrained(folder / "unet")
    tiny_vae(0).save_pretrained(folder / "vae")
    tiny_text_encoder(0).save_pretrained(folder / "text_encoder")
    model = load_base_model(BaseModelSpec(name="sd15", kind="diffusers", path=str(folder), style="webvid"))
    assert model.encode_prompts(["a dog"]).shape[:2] == (1, 77)
    assert model.schedule.alpha_bar(999).item() == pytest.approx(0.001579, abs=1e-6)


@pytest.mark.parametrize("kind", ["diffusers", "single_file", "ckpt", "toy"])
def test_missing_weights_name_the_path_the_layout_and_the_config_key(tmp_path, kind):
    spec = BaseModelSpec(
        name="mine", kind=kind, path=str(tmp_path / "nothing"), style="flat",
        config_dir=str(tmp_path), published="civitai.com: 'Mine'",
    )  # fmt: skip
    with pytest.raises(BaseModelLoadError) as error:
        load_base_model(spec)
    message = str(error.value)
    assert str(tmp_path / "nothing") in message and "pool.members.mine.path" in message
    if kind != "toy":
        assert "civitai.com: 'Mine'" in message and "Expected" in message


class Payload:
    """A non-tensor object a malicious or careless .ckpt may carry."""


def test_pickles_with_objects_are_refused_unread(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "callback": Payload()}, path)
    spec = BaseModelSpec(name="ckpt", kind="ckpt", path=str(path), style="anime", config_dir=str(tmp_path))
    with pytest.raises(BaseModelLoadError, match="refused unread"):
        load_base_model(spec)


def test_truncated_checkpoint_gives_one_clear_error(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a safetensors")
    spec = BaseModelSpec(
        name="cut", kind="single_file", path=str(path), style="realistic", config_dir=str(tmp_path)
    )
    with pytest.raises(BaseModelLoadError, match="cannot load"):
        load_base_model(spec)
