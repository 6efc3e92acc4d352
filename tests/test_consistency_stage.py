"""The AnimateLCM-style baseline stage on the toy architecture: the image LoRA trains first, then the
motion module with the LoRA in the online model; the run leaves the student, its LoRA, samples from the
consistency sampler; checkpoints hold the LoRA and the EMA target; the harness evaluates it at every
step count it declares."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import MotionAdapter
from safetensors.torch import load_file
from toy_teacher_fixture import tiny_run_overrides, write_random_toy_teacher

from eval.candidates import baseline_of
from lightning_distill.config import compose
from lightning_distill.stages.chain import ChainError, plan_chain
from lightning_distill.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("alcm")
    teacher = write_random_toy_teacher(tmp / "teacher")
    overrides = [
        *tiny_run_overrides(tmp, teacher),
        "stages.consistency.module.image_steps=2",
        "stages.consistency.module.motion_steps=2",
        "checkpoint_every=1",
    ]
    result = train(compose(["+experiment=animatelcm", *overrides]))
    (run_dir,) = list((tmp / "runs" / "animatelcm").iterdir())
    return run_dir, teacher, result


def test_both_phases_train_and_the_run_leaves_student_lora_and_samples(run):
    run_dir, teacher, result = run
    stage = run_dir / "stage_0_consistency"
    summary = json.loads((stage / "summary.json").read_text())
    assert summary["iterations"] == 4 and summary["sample_steps"] == [1, 2, 4, 8]
    logged = summary["last_logged"]
    assert "consistency/loss_image" in logged and "consistency/loss_video" in logged
    lora = load_file(stage / "consistency_lora.safetensors")
    assert lora and all("motion_modules" not in k for k in lora)
    assert any(v.abs().sum() > 0 for k, v in lora.items() if "lora_B" in k)  # B starts at zero: it trained
    assert load_file(result["exports"]["image_lora"]).keys() == lora.keys()
    student = MotionAdapter.from_pretrained(stage / "student")
    original = MotionAdapter.from_pretrained(teacher / "motion_module")
    assert any(
        not torch.equal(a, b) for a, b in zip(student.parameters(), original.parameters(), strict=True)
    )
    assert {p.parent.name for p in (run_dir / "samples").rglob("*.gif")} == {
        "toy_flat",
        "toy_neon",
        "toy_pastel",
    }


def test_candidates_cover_every_declared_step_count(run):
    run_dir, _, _ = run
    found = baseline_of(run_dir)
    assert [c.key for c in found] == ["animatelcm_1", "animatelcm_2", "animatelcm_4", "animatelcm_8"]
    assert {c.sampler for c in found} == {"consistency"} and all(c.image_lora for c in found)


def test_a_consistency_stage_runs_alone():
    with pytest.raises(ChainError, match="runs alone"):
        plan_chain(
            {
                "mse": {"objective": "mse", "teacher_steps": 128, "student_steps": 32},
                "lcm": {"objective": "consistency", "teacher_steps": 50, "student_steps": 4},
            }
        )


def test_harness_scores_the_baseline_with_its_lora_and_sampler(run, tmp_path):
    from eval.__main__ import evaluate

    run_dir, teacher, _ = run
    overrides = [
        f"run={run_dir}", f"baseline_run={run_dir}", f"out={tmp_path}", f"paths.toy_teacher={teacher}",
        "+eval=toy", "eval.clips_per_style=2", "eval.naive_steps=[]", "eval.teacher_full=null",
    ]  # fmt: skip
    result = evaluate(compose(overrides, config_name="evaluate"))
    assert {"student_1", "student_8", "animatelcm_1", "animatelcm_8"} <= set(result["candidates"])
    row = result["models"]["toy_pastel"]  # held out: the LoRA is merged into its image UNet
    assert row["animatelcm_4"] == row["student_4"]  # the same model, sampler and noise: the same clips
