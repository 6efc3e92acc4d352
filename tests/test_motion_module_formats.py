"""Motion modules in the original and diffusers layouts: exact round trips, and files diffusers itself loads."""

import argparse
import json
import subprocess
import sys

import pytest
import torch
from diffusers import MotionAdapter
from diffusers.loaders.single_file_utils import (
    convert_animatediff_checkpoint_to_diffusers,
    infer_diffusers_model_type,
)
from safetensors.torch import load_file, save_file
from tiny_models import tiny_motion_adapter, tiny_motion_adapter_config, tiny_motion_unet

from lightning_distill.export import main as export_main
from lightning_distill.models.motion_module_io import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    MotionModuleFormatError,
    from_motion_adapter,
    from_state_dict,
    read_motion_module,
    write_motion_module,
)
from lightning_distill.models.motion_module_keys import (
    diffusers_to_original,
    diffusers_to_original_keys,
    original_to_diffusers,
    original_to_diffusers_key,
)

VERSIONS = ["v1", "v2", "v3"]


def assert_same_tensors(a: dict, b: dict):
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module", params=VERSIONS)
def adapter(request):
    return tiny_motion_adapter(request.param, seed=VERSIONS.index(request.param))


@pytest.fixture(scope="module")
def original_files(tmp_path_factory):
    """version -> an original-layout .safetensors file of a tiny adapter, as our writer makes it."""
    folder = tmp_path_factory.mktemp("original")
    files = {}
    for i, version in enumerate(VERSIONS):
        files[version] = folder / f"mm_{version}.safetensors"
        write_motion_module(
            from_motion_adapter(tiny_motion_adapter(version, seed=i)), files[version], "original"
        )
    return files


# ---- the key mapping -----------------------------------------------------------------------------------


def test_key_mapping_agrees_with_diffusers_converter():
    state_dict = tiny_motion_adapter("v2").state_dict()
    original = diffusers_to_original(state_dict)
    ours = original_to_diffusers(original)
    theirs = convert_animatediff_checkpoint_to_diffusers(original)
    # diffusers drops the position tables (its model recomputes them); everything else must agree exactly.
    assert set(theirs) == {k for k in ours if not k.endswith("pos_embed.pe")}
    assert all(theirs[k] is ours[k] for k in theirs)
    assert_same_tensors(ours, state_dict)


def test_full_v2_layout_key_counts():
    # Built on the meta device: the real v2 structure without 453M parameters of memory.
    with torch.device("meta"):
        state_dict = MotionAdapter().state_dict()
    original_keys = [k for key in state_dict for k in diffusers_to_original_keys(key)]
    assert len(state_dict) == 567 and sum(k.endswith("pos_embed.pe") for k in state_dict) == 21
    assert len(original_keys) == len(set(original_keys)) == 588
    assert (
        "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe"
        in original_keys
    )
    assert (
        "mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0.ff_norm.weight" in original_keys
    )


def test_single_key_renames():
    key = "up_blocks.3.motion_modules.2.temporal_transformer.transformer_blocks.0.norms.1.bias"
    assert original_to_diffusers_key(key) == "up_blocks.3.motion_modules.2.transformer_blocks.0.norm2.bias"
    pe = "mid_block.motion_modules.0.transformer_blocks.0.pos_embed.pe"
    assert [original_to_diffusers_key(k) for k in diffusers_to_original_keys(pe)] == [pe, None]
    assert diffusers_to_original_keys("conv_in.weight") == ("conv_in.weight",)


# ---- round trips ---------------------------------------------------------------------------------------


def test_round_trips_are_exact(adapter, tmp_path):
    source = from_motion_adapter(adapter)
    version = source.version
    write_motion_module(source, tmp_path / "a_original.safetensors", "original")
    from_original = read_motion_module(tmp_path / "a_original.safetensors")
    assert (from_original.layout, from_original.version) == ("original", version)
    write_motion_module(from_original, tmp_path / "b_diffusers", "diffusers")
    from_folder = read_motion_module(tmp_path / "b_diffusers")
    write_motion_module(from_folder, tmp_path / "c_diffusers.safetensors", "diffusers")
    from_single = read_motion_module(tmp_path / "c_diffusers.safetensors")
    write_motion_module(from_single, tmp_path / "d_original.safetensors", "original")
    for checkpoint in (from_original, from_folder, from_single):
        assert_same_tensors(checkpoint.state_dict, source.state_dict)
        assert checkpoint.config == source.config and checkpoint.version == version
    # original -> diffusers -> original gives back the same file content, key for key, bit for bit.
    assert_same_tensors(
        load_file(tmp_path / "d_original.safetensors"), load_file(tmp_path / "a_original.safetensors")
    )


def test_half_precision_survives(tmp_path):
    source = from_motion_adapter(tiny_motion_adapter("v2").half())
    write_motion_module(source, tmp_path / "half.safetensors", "original")
    back = read_motion_module(tmp_path / "half.safetensors")
    assert_same_tensors(back.state_dict, source.state_dict)
    assert back.to_motion_adapter().dtype == torch.float16


def test_reads_ckpt_wrapped_in_state_dict(original_files, tmp_path):
    original = load_file(original_files["v2"])
    torch.save({"state_dict": original, "global_step": 10}, tmp_path / "mm_sd_v15_v2.ckpt")
    from_ckpt = read_motion_module(tmp_path / "mm_sd_v15_v2.ckpt")
    from_safetensors = read_motion_module(original_files["v2"])
    assert from_ckpt.version == "v2" and from_ckpt.layout == "original"
    assert_same_tensors(from_ckpt.state_dict, from_safetensors.state_dict)


def test_motion_modules_of_a_unet_motion_model():
    """A trained UNetMotionModel's motion-module entries are a diffusers-layout adapter state dict."""
    unet = tiny_motion_unet()
    entries = {k: v for k, v in unet.state_dict().items() if ".motion_modules." in k}
    config = tiny_motion_adapter_config(
        "v2", block_out_channels=unet.config.block_out_channels, motion_layers_per_block=1
    )
    checkpoint = from_state_dict(entries, config)
    assert checkpoint.version == "v2"
    assert_same_tensors(checkpoint.to_motion_adapter().state_dict(), entries)


# ---- what diffusers makes of the files -----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_original_file_loads_through_diffusers_from_single_file(original_files, version, tmp_path):
    state_dict = load_file(original_files[version])
    assert infer_diffusers_model_type(state_dict) == f"animatediff_{version}"
    # Offline, from_single_file needs config= (a local folder with config.json) or it looks online.
    checkpoint = read_motion_module(original_files[version])
    (tmp_path / CONFIG_NAME).write_text(json.dumps({"_class_name": "MotionAdapter", **checkpoint.config}))
    loaded = MotionAdapter.from_single_file(
        str(original_files[version]), config=str(tmp_path), local_files_only=True
    )
    assert_same_tensors(loaded.state_dict(), checkpoint.state_dict)


def test_diffusers_files_load_strictly(adapter, tmp_path):
    source = from_motion_adapter(adapter)
    single = write_motion_module(source, tmp_path / "mm.safetensors", "diffusers")
    strict = MotionAdapter(**source.config)
    strict.load_state_dict(load_file(single), strict=True)
    assert_same_tensors(strict.state_dict(), adapter.state_dict())
    folder = write_motion_module(source, tmp_path / "mm_dir", "diffusers")
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    pretrained = MotionAdapter.from_pretrained(folder, local_files_only=True)
    assert_same_tensors(pretrained.state_dict(), adapter.state_dict())
    assert dict(pretrained.config)["use_motion_mid_block"] == (source.version == "v2")


def test_reads_a_save_pretrained_folder(tmp_path):
    adapter = tiny_motion_adapter("v2", seed=5)
    adapter.save_pretrained(tmp_path / "saved")
    checkpoint = read_motion_module(tmp_path / "saved")
    assert checkpoint.config_source == f"shapes+{CONFIG_NAME}"
    assert checkpoint.config == {**tiny_motion_adapter_config("v2"), "conv_in_channels": None}
    assert_same_tensors(checkpoint.state_dict, adapter.state_dict())


# ---- config and version from what the file holds ---------------------------------------------------------


def test_config_from_shapes_folder_and_caller(tmp_path):
    adapter = tiny_motion_adapter("v3")
    # A bare state dict, as the Lightning release ships it: no config anywhere but the shapes.
    save_file(adapter.state_dict(), tmp_path / "bare.safetensors")
    guessed = read_motion_module(tmp_path / "bare.safetensors")
    assert guessed.version == "v3" and guessed.config_source == "shapes"
    truth = tiny_motion_adapter_config("v3")
    for field in (
        "block_out_channels",
        "motion_layers_per_block",
        "motion_max_seq_length",
        "use_motion_mid_block",
    ):
        assert guessed.config[field] == truth[field], field
    # Heads and groups leave no trace in shapes: AnimateDiff's values where they divide the channels.
    assert (guessed.config["motion_num_attention_heads"], guessed.config["motion_norm_num_groups"]) == (8, 16)
    told = read_motion_module(tmp_path / "bare.safetensors", config=truth)
    assert told.config == {**guessed.config, **truth} and told.config_source == "shapes+caller"
    folder = write_motion_module(told, tmp_path / "dir", "diffusers")
    assert read_motion_module(folder).config == told.config


def test_missing_position_tables_are_recomputed(tmp_path):
    adapter = tiny_motion_adapter("v1")
    # diffusers' own converter output carries no position tables.
    converted = convert_animatediff_checkpoint_to_diffusers(diffusers_to_original(adapter.state_dict()))
    save_file(converted, tmp_path / "no_pe.safetensors")
    checkpoint = read_motion_module(tmp_path / "no_pe.safetensors", config=tiny_motion_adapter_config("v1"))
    assert_same_tensors(checkpoint.state_dict, adapter.state_dict())


# ---- errors: one message each, naming the file and the fix ------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"motion module not found: .*nothing\.ckpt.*guoyww"):
        read_motion_module(tmp_path / "nothing.ckpt")


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_truncated_file(original_files, tmp_path, suffix):
    path = tmp_path / f"cut{suffix}"
    if suffix == ".ckpt":
        torch.save(load_file(original_files["v2"]), path)
    else:
        path.write_bytes(original_files["v2"].read_bytes())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MotionModuleFormatError, match=r"cannot read .*cut.*truncated"):
        read_motion_module(path)


def test_not_a_motion_module(tmp_path):
    save_file({"conv1.weight": torch.zeros(2, 2)}, tmp_path / "other.safetensors")
    with pytest.raises(
        MotionModuleFormatError,
        match=r"not an AnimateDiff motion module: expected keys like "
        r"'down_blocks\.0\.motion_modules\.0\.temporal_transformer\.norm\.weight'",
    ):
        read_motion_module(tmp_path / "other.safetensors")
    state_dict = {
        **tiny_motion_adapter("v2").state_dict(),
        "down_blocks.0.resnets.0.conv1.weight": torch.zeros(1),
    }
    with pytest.raises(MotionModuleFormatError, match="belong to no motion module"):
        from_state_dict(state_dict)


def test_pickle_with_objects_is_refused(tmp_path):
    torch.save(
        {"state_dict": {"a": torch.zeros(1)}, "callback": argparse.Namespace(x=1)}, tmp_path / "evil.ckpt"
    )
    with pytest.raises(MotionModuleFormatError, match=r"refused to unpickle .*evil\.ckpt"):
        read_motion_module(tmp_path / "evil.ckpt")


def test_inconsistent_inputs(tmp_path):
    adapter = tiny_motion_adapter("v2")
    with pytest.raises(MotionModuleFormatError, match="does not fit MotionAdapter"):
        from_state_dict(adapter.state_dict(), {"motion_max_seq_length": 24})
    original = diffusers_to_original(adapter.state_dict())
    second_pe = next(k for k in original if k.endswith("attention_blocks.1.pos_encoder.pe"))
    original[second_pe] = original[second_pe] + 1
    with pytest.raises(MotionModuleFormatError, match=r"position tables .* must be equal"):
        from_state_dict(original)
    mixed = {
        **diffusers_to_original(adapter.state_dict()),
        "down_blocks.0.motion_modules.0.norm.bias": torch.zeros(16),
    }
    with pytest.raises(MotionModuleFormatError, match="mixes the original and the diffusers layout"):
        from_state_dict(mixed)
    with pytest.raises(MotionModuleFormatError, match=r"ending in \.safetensors"):
        write_motion_module(from_motion_adapter(adapter), tmp_path / "x.ckpt", "original")
    (tmp_path / "weights.npz").write_bytes(b"0")
    with pytest.raises(MotionModuleFormatError, match="unknown file type"):
        read_motion_module(tmp_path / "weights.npz")


# ---- the export command ------------------------------------------------------------------------------------


def test_export_cli_converts_both_ways(original_files, tmp_path, capsys):
    assert (
        export_main(
            ["--input", str(original_files["v1"]), "--layout", "diffusers", "--output", str(tmp_path / "d")]
        )
        == 0
    )
    assert "AnimateDiff v1" in capsys.readouterr().out
    export_main(
        ["--input", str(tmp_path / "d"), "--layout", "original", "--output", str(tmp_path / "o.safetensors")]
    )
    assert_same_tensors(load_file(tmp_path / "o.safetensors"), load_file(original_files["v1"]))
    loaded = MotionAdapter.from_pretrained(tmp_path / "d", local_files_only=True)
    assert_same_tensors(loaded.state_dict(), read_motion_module(original_files["v1"]).state_dict)


def test_export_cli_config_option_supplies_what_shapes_cannot(tmp_path):
    adapter = tiny_motion_adapter("v2", seed=3)
    save_file(adapter.state_dict(), tmp_path / "bare.safetensors")
    (tmp_path / "cfg.json").write_text(json.dumps(dict(adapter.config)))
    out = tmp_path / "folder"
    args = ["--input", str(tmp_path / "bare.safetensors"), "--layout", "diffusers", "--output", str(out)]
    export_main([*args, "--config", str(tmp_path / "cfg.json")])
    written = json.loads((out / CONFIG_NAME).read_text())
    assert (written["motion_num_attention_heads"], written["motion_norm_num_groups"]) == (2, 8)


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda p: p / "absent.ckpt", "motion module not found"),
        (
            lambda p: (p / "cut.safetensors").write_bytes(b"\x10\x00\x00") and p / "cut.safetensors",
            "truncated",
        ),
        (
            lambda p: save_file({"w": torch.zeros(1)}, p / "w.safetensors") or p / "w.safetensors",
            "expected keys like",
        ),
    ],
)
def test_export_cli_errors_are_one_line(tmp_path, make_input, message):
    with pytest.raises(SystemExit) as exit_info:
        export_main(
            [
                "--input",
                str(make_input(tmp_path)),
                "--layout",
                "original",
                "--output",
                str(tmp_path / "o.safetensors"),
            ]
        )
    text = str(exit_info.value.code)
    assert text.startswith("lightning_distill.export: error:") and message in text and "\n" not in text
    assert not (tmp_path / "o.safetensors").exists()


def test_export_module_entry_point(original_files, tmp_path):
    out = tmp_path / "single.safetensors"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_distill.export",
            "--input",
            str(original_files["v3"]),
            "--layout",
            "diffusers",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    strict = MotionAdapter(**tiny_motion_adapter_config("v3"))
    strict.load_state_dict(load_file(out), strict=True)


# ---- full size (slow: 453M parameters) -----------------------------------------------------------------------


@pytest.mark.slow
def test_full_size_v2_loads_as_the_model_card_and_comfyui_do(tmp_path):
    source = from_motion_adapter(MotionAdapter())
    assert source.version == "v2" and source.num_parameters() == 453_209_280
    single = write_motion_module(
        source, tmp_path / "animatediff_lightning_diffusers.safetensors", "diffusers"
    )
    plain = MotionAdapter()
    plain.load_state_dict(load_file(single))  # the model card's line, strict by default
    assert_same_tensors(plain.state_dict(), source.state_dict)
    del plain
    original = write_motion_module(source, tmp_path / "animatediff_lightning_comfyui.safetensors", "original")
    original_sd = load_file(original)
    assert len(original_sd) == 588 and infer_diffusers_model_type(original_sd) == "animatediff_v2"
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / CONFIG_NAME).write_text(json.dumps({"_class_name": "MotionAdapter", **source.config}))
    loaded = MotionAdapter.from_single_file(
        str(original), config=str(tmp_path / "cfg"), local_files_only=True
    )
    assert_same_tensors(loaded.state_dict(), source.state_dict)
