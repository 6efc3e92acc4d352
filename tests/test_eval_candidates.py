"""What an evaluation compares (eval/candidates.py): a run's students at their own step counts or, with
`students_at`, every stage's student at the counts asked for; bad counts and paths that are not a run or a
motion module are one clear error. Run directories are laid out by hand: nothing is generated here."""

from __future__ import annotations

import json

import pytest

from eval.candidates import baseline_of, step_counts, students_of
from eval.report import _colours


def _stage(run, index, name, objective="adversarial", student_steps=4, **extra):
    folder = run / f"stage_{index}_{name}"
    (folder / "student").mkdir(parents=True)
    summary = {"stage": name, "objective": objective, "student_steps": student_steps, **extra}
    (folder / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def run(tmp_path):
    run = tmp_path / "4step_run"
    _stage(run, 0, "mse_128_to_32", "mse", 32)
    _stage(run, 1, "adversarial_32_to_8", student_steps=8)
    _stage(run, 2, "adversarial_8_to_4", student_steps=4)
    (run / "stage_3_unfinished").mkdir()  # a stage that never finished is not a candidate
    return run


def test_each_student_at_its_own_step_count_by_default(run):
    found = students_of(run)
    assert [(c.key, c.steps, c.stage) for c in found] == [
        ("student_32", 32, None),
        ("student_8", 8, None),
        ("student_4", 4, None),
    ]


def test_students_at_gives_every_stage_at_every_count_each_with_its_own_key(run):
    found = students_of(run, [4, 1])
    assert [c.key for c in found] == [
        "student_4_mse_128_to_32",
        "student_1_mse_128_to_32",
        "student_4_adversarial_32_to_8",
        "student_1_adversarial_32_to_8",
        "student_4_adversarial_8_to_4",
        "student_1_adversarial_8_to_4",
    ]
    assert {c.sampler for c in found} == {"euler"}
    assert found[0].motion_module == str(run / "stage_0_mse_128_to_32" / "student")
    assert found[0].label.endswith("4 steps (stage mse_128_to_32)")


def test_a_consistency_stage_keeps_its_sampler_and_lora(tmp_path):
    run = tmp_path / "animatelcm_run"
    _stage(run, 0, "consistency", "consistency", image_lora="lora.safetensors", sample_steps=[1, 2, 4])
    (only,) = students_of(run, [8])
    assert (only.key, only.sampler) == ("student_8_consistency", "consistency")
    assert only.image_lora == str(run / "stage_0_consistency" / "lora.safetensors")
    # The baseline keeps its own step counts whatever the evaluated run is sampled at.
    assert [c.key for c in baseline_of(run)] == ["animatelcm_1", "animatelcm_2", "animatelcm_4"]


def test_one_motion_module_at_the_counts_asked(tmp_path):
    module = tmp_path / "motion_module.safetensors"  # no step count in its name: students_at gives it
    module.write_bytes(b"weights")
    assert [c.key for c in students_of(module, [2, 4])] == ["student_2", "student_4"]
    with pytest.raises(ValueError, match="says its step count"):
        students_of(module)


@pytest.mark.parametrize("layout", ["empty folder", "unfinished run"])
def test_a_folder_that_is_neither_a_run_nor_a_module_is_one_clear_error(tmp_path, layout):
    folder = tmp_path / "runs"
    folder.mkdir()
    if layout == "unfinished run":
        (folder / "stage_0_mse_128_to_32").mkdir()
    with pytest.raises(ValueError, match="not a run directory with a finished stage"):
        students_of(folder, [4])


@pytest.mark.parametrize("bad", [[], [0], [2.5], ["four"], [-1], True])
def test_bad_step_counts_are_one_clear_error(bad):
    with pytest.raises(ValueError, match=r"students_at=.*whole step counts of at least 1"):
        step_counts(bad)


def test_step_counts_take_one_number_and_drop_repeats():
    assert step_counts(None) is None
    assert step_counts(4) == [4]
    assert step_counts([4, 1, 4]) == [4, 1]


def test_every_stage_line_of_a_plot_has_its_own_colour():
    names = ["student", "teacher_naive", "student: mse_128_to_32", "student: adversarial_32_to_8"]
    colours = _colours(names)
    assert len(set(colours.values())) == len(names)
