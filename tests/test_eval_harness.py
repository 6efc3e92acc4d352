"""The evaluation harness on a tiny distillation run: every stage's student, the teacher at its full
sampler and naively, scored per toy base model; metrics.json, report.md and report.html agree; the clip
cache makes an interrupted evaluation resume without regenerating what it has."""

from __future__ import annotations

import json

import pytest
import torch
from toy_teacher_fixture import tiny_run_overrides, write_random_toy_teacher

from eval.__main__ import evaluate
from eval.generation import cached_clips
from lightning_distill.config import compose
from lightning_distill.toy.world import HELD_OUT_STYLE, STYLES, base_model_of
from lightning_distill.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval_run")
    teacher = write_random_toy_teacher(tmp / "teacher")
    train(compose(["+experiment=8step", *tiny_run_overrides(tmp, teacher)]))
    (run_dir,) = list((tmp / "runs" / "8step").iterdir())
    return run_dir, teacher


def _evaluate(run_dir, teacher, out, *extra):
    return evaluate(
        compose(
            [
                f"run={run_dir}",
                f"out={out}",
                f"paths.toy_teacher={teacher}",
                "+eval=toy",
                "eval.clips_per_style=3",
                "eval.naive_steps=[1]",
                "eval.teacher_full.steps=3",
                *extra,
            ],
            config_name="evaluate",
        )
    )


def test_harness_scores_every_candidate_on_every_base_model_and_resumes(run, tmp_path):
    run_dir, teacher = run
    out = tmp_path / "eval"
    result = _evaluate(run_dir, teacher, out)
    keys = {"student_32", "student_8", "teacher_naive_1", "teacher_full_3"}
    assert set(result["candidates"]) == keys
    assert set(result["models"]) == {base_model_of(s) for s in STYLES}
    assert result["models"][base_model_of(HELD_OUT_STYLE)]["seen"] is False
    for row in result["models"].values():
        for key in keys:
            assert 0.0 <= row[key]["prompt_accuracy"] <= 1.0 and row[key]["clips"] == 3
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["models"] == json.loads(json.dumps(result["models"]))
    report = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for key in keys:
        label = result["candidates"][key]["label"]
        assert label in report and label in page
    # The html table carries metrics.json's numbers; plots and playable clips are inline.
    row = result["models"][base_model_of(STYLES[0])]["student_8"]
    assert f"{row['prompt_accuracy']:.3f}" in (out / "report.md").read_text()
    assert page.count("<svg") == 3 and "data:image/gif;base64," in page

    # Interrupted: one cell's clips are missing. Only that cell is generated again.
    clips = sorted((out / "clips").glob("*.safetensors"))
    assert len(clips) == len(keys) * len(STYLES)
    before = {p.name: p.stat().st_mtime_ns for p in clips}
    clips[0].unlink()
    again = _evaluate(run_dir, teacher, out)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "clips").glob("*.safetensors")}
    assert set(after) == set(before)
    assert [name for name in after if after[name] != before[name]] == [clips[0].name]
    assert again["models"] == result["models"]  # same prompts, same noise: the same numbers


def test_students_at_samples_every_stage_student_at_the_same_step_counts(run, tmp_path):
    """`students_at=[1]`: the MSE stage's student and the adversarial stage's, both at one step, each its
    own row and its own line in the plots (what each stage added at the target step count)."""
    run_dir, teacher = run
    out = tmp_path / "eval"
    result = _evaluate(run_dir, teacher, out, "students_at=[1]", "eval.teacher_full=null")
    stages = ["mse_128_to_32", "adversarial_32_to_8"]
    keys = {f"student_1_{stage}" for stage in stages} | {"teacher_naive_1"}
    assert set(result["candidates"]) == keys
    assert [result["candidates"][f"student_1_{s}"]["stage"] for s in stages] == stages
    for row in result["models"].values():
        assert all(row[key]["clips"] == 3 for key in keys)
    # Two students at the same step count from different stages, the same noise: different clips.
    name = base_model_of(STYLES[0])
    mse, adversarial = (cached_clips(out, f"student_1_{stage}", name, 3) for stage in stages)
    assert mse.shape == adversarial.shape and not torch.equal(mse, adversarial)
    report = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for stage in stages:
        assert f"(stage {stage})" in report
        assert page.count(f"student: {stage}") == 3  # its line's legend in each of the three plots


def test_students_at_rejects_a_step_count_below_one(run, tmp_path):
    run_dir, teacher = run
    with pytest.raises(ValueError, match=r"students_at=\[0\]"):
        _evaluate(run_dir, teacher, tmp_path / "eval", "students_at=[0]")


def test_a_protocol_must_be_chosen(run, tmp_path):
    run_dir, _ = run
    with pytest.raises(ValueError, match=r"\+eval=toy"):
        evaluate(compose([f"run={run_dir}", f"out={tmp_path}"], config_name="evaluate"))
