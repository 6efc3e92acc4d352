"""The stage chain end to end on the toy world's architecture: every stage trains and leaves its student,
the run exports the motion module in the layouts diffusers and ComfyUI load, writes samples for every
member and the held-out model, resumes after SIGKILL without redoing finished work, and a completed run
is not trained again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from diffusers import MotionAdapter
from safetensors.torch import load_file
from toy_teacher_fixture import tiny_run_overrides, write_random_toy_teacher

from lightning_distill.config import compose
from lightning_distill.toy.world import STYLES
from lightning_distill.train import train


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return write_random_toy_teacher(tmp_path_factory.mktemp("toy_teacher"))


def test_four_step_chain_runs_end_to_end(tmp_path, teacher):
    # With gradient checkpointing on (motion modules and image ResNets), the MSE loss in another space
    # than the default and the relativistic adversarial loss: the same chain must run.
    overrides = [
        *tiny_run_overrides(tmp_path, teacher),
        "memory.checkpoint_motion_modules=true",
        "seed=3",
        "stages.mse_128_to_32.module.loss_space=eps",
        "recipe.adversarial.loss=relativistic",
    ]
    result = train(compose(["+experiment=4step", *overrides, "memory.checkpoint_image_layers=true"]))
    run_dir = tmp_path / "runs" / "4step"
    (run,) = list(run_dir.iterdir())
    # The run's seed draws batches and noise; the clips are the toy teacher's render (seed 0 + style index).
    for style in ("flat", "neon"):
        render = json.loads((tmp_path / "data" / "toy" / style / "render.json").read_text())
        assert render["seed"] == STYLES.index(style)
    for index, name in enumerate(["mse_128_to_32", "adversarial_32_to_8", "adversarial_8_to_4"]):
        summary = json.loads((run / f"stage_{index}_{name}" / "summary.json").read_text())
        assert summary["iterations"] == (2 if index == 0 else 3)
        if index:  # logged whatever the loss: whether the discriminator ranks real above fake at all
            assert "adv/d_pair_accuracy" in summary["last_logged"]
    exports = result["exports"]
    config = json.loads((run / "export" / "motion_adapter" / "config.json").read_text())
    # The student was loaded from its stage's folder: that machine-local path is not exported.
    assert "_name_or_path" not in config
    adapter = MotionAdapter(**{k: v for k, v in config.items() if not k.startswith("_")})
    adapter.load_state_dict(load_file(exports["diffusers_file"]))  # as the model card loads it
    assert MotionAdapter.from_pretrained(exports["diffusers_folder"]) is not None
    original = load_file(exports["original_file"])
    assert any("temporal_transformer" in key for key in original)
    assert list(
        (run / "stage_1_adversarial_32_to_8" / "samples" / "iteration_000002").glob("toy_flat_00.gif")
    )
    samples = {p.parent.name for p in (run / "samples").rglob("*.gif")}
    assert samples == {"toy_flat", "toy_neon", "toy_pastel"}
    # The student moved away from the teacher, and only in its motion module.
    student = MotionAdapter.from_pretrained(run / "stage_2_adversarial_8_to_4" / "student")
    teacher_adapter = MotionAdapter.from_pretrained(teacher / "motion_module")
    assert any(
        not torch.equal(a, b) for a, b in zip(student.parameters(), teacher_adapter.parameters(), strict=True)
    )


def _wait_for(path, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.slow
def test_sigkill_in_an_adversarial_stage_then_resume(tmp_path, teacher):
    overrides = [
        *tiny_run_overrides(tmp_path, teacher),
        "recipe.adversarial.conditional_steps=12",
        "checkpoint_every=2",
    ]
    command = [sys.executable, "-m", "lightning_distill", "+experiment=4step", *overrides]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    runs = tmp_path / "runs" / "4step"

    def mid_adversarial():
        found = list(runs.glob("*/stage_1_adversarial_32_to_8/last.ckpt"))
        if not found:
            return False
        return torch.load(found[0], weights_only=True)["state_dict"]["iteration"] >= 4

    assert _wait_for(mid_adversarial), process.stderr.read() if process.poll() is not None else "timeout"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    (run,) = list(runs.iterdir())
    first_stage = run / "stage_0_mse_128_to_32" / "summary.json"
    stamp = first_stage.stat().st_mtime_ns
    killed_at = torch.load(run / "stage_1_adversarial_32_to_8" / "last.ckpt", weights_only=True)[
        "state_dict"
    ]["iteration"]
    assert not (run / "stage_1_adversarial_32_to_8" / "summary.json").exists()

    resumed = subprocess.run([*command, "resume=latest"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert first_stage.stat().st_mtime_ns == stamp  # finished before the kill: not redone
    summary = json.loads((run / "stage_1_adversarial_32_to_8" / "summary.json").read_text())
    assert summary["resumed_from"] and summary["iterations"] == 13
    assert int(killed_at) >= 4
    assert (run / "result.json").exists()
