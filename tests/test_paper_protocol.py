"""The paper-world protocols through the harness, on toy-architecture base models and randomly initialised
metric networks (the same code a user runs with real checkpoints and weights files): every candidate is
scored per base model with FVD, FID and CLIP score, against the teacher's clips (lightning_webvid) or
real videos read from a folder (animatelcm_ucf101, a corrupt file skipped and counted); every record and
the report say the numbers come from untrained networks."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from tiny_models import he_init, tiny_clip_scorer
from toy_teacher_fixture import write_random_toy_teacher

from eval.__main__ import evaluate
from eval.fid import untrained_inception_v3
from eval.fvd import I3DDetector
from eval.i3d import I3D
from eval.paper_protocol import Networks, read_reference_videos
from lightning_distill.config import compose
from lightning_distill.data.video import encode_mp4


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper_protocol")
    teacher = write_random_toy_teacher(tmp / "teacher")
    student = tmp / "toy_2step_student"
    shutil.copytree(teacher / "motion_module", student)
    torch.manual_seed(0)
    networks = Networks(
        i3d=I3DDetector(he_init(I3D()), weights=None),
        inception=untrained_inception_v3(),
        clip=tiny_clip_scorer(tmp),
    )
    (tmp / "prompts.txt").write_text("a red circle moving left\na blue square moving up\n")
    return tmp, teacher, student, networks


def _config(tmp, teacher, student, protocol, *extra, held_out: bool = True):
    cfg = compose(
        [
            f"run={student}", f"out={tmp / protocol}", f"+eval={protocol}", f"eval.prompts_file={tmp / 'prompts.txt'}",
            "eval.num_prompts=null", "eval.videos_per_prompt=2", "eval.frames=10", "eval.size=32", "eval.device=cpu",
            "eval.fvd_frames=10", f"eval.teacher_motion_module={teacher / 'motion_module'}",
            "eval.teacher_full.steps=2", "eval.animatelcm_release.enabled=false", *extra,
        ],
        config_name="evaluate",
    )  # fmt: skip
    OmegaConf.set_struct(cfg, False)
    spec = {
        "_target_": "lightning_distill.models.base_model.BaseModelSpec",
        "kind": "toy",
        "path": str(teacher),
    }
    cfg.eval.base_models = {"toy_flat": {**spec, "name": "toy_flat", "style": "flat"}}
    cfg.eval.held_out = []
    if held_out:
        cfg.eval.base_models["toy_pastel"] = {**spec, "name": "toy_pastel", "style": "pastel"}
        cfg.eval.held_out = ["toy_pastel"]
    return cfg


def test_lightning_webvid_scores_every_candidate_against_the_teacher(setup):
    tmp, teacher, student, networks = setup
    cfg = _config(tmp, teacher, student, "lightning_webvid", "eval.reference=teacher_full_2")
    result = evaluate(cfg, networks=networks)
    assert set(result["candidates"]) == {"student_2", "teacher_full_2"}
    assert result["models"]["toy_pastel"]["seen"] is False
    cell = result["models"]["toy_flat"]["student_2"]
    assert set(cell) == {"fvd", "fid", "clip_score"}
    assert all(record["untrained"] and "not a metric" in record["metric"] for record in cell.values())
    assert cell["fvd"]["num_samples"] == [4, 4] and cell["fid"]["num_samples"] == [40, 40]
    # The reference set is not compared with itself; its CLIP score is still measured.
    assert set(result["models"]["toy_flat"]["teacher_full_2"]) == {"clip_score"}
    report = (tmp / "lightning_webvid" / "report.md").read_text()
    assert "UNTRAINED metric networks" in report and "| FVD (seen / held out) |" in report


def _write_videos(folder, count):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        frames = rng.integers(0, 255, (10, 48, 64, 3), dtype=np.uint8)
        (folder / f"v_{i}.mp4").write_bytes(encode_mp4(frames, fps=8))
    (folder / "broken.avi").write_bytes(b"not a video")


def test_reference_videos_are_read_and_a_corrupt_file_is_skipped(tmp_path, caplog):
    _write_videos(tmp_path, 3)
    clips = read_reference_videos(str(tmp_path), frames=8, size=32)
    assert clips.shape == (3, 3, 8, 32, 32) and clips.min() >= -1 and clips.max() <= 1
    assert "1 of 4 files skipped" in caplog.text
    with pytest.raises(FileNotFoundError, match=r"eval\.reference_videos"):
        read_reference_videos(str(tmp_path / "missing"), frames=8, size=32)


def test_animatelcm_ucf101_compares_with_real_videos(setup):
    tmp, teacher, student, networks = setup
    _write_videos(tmp / "ucf", 4)
    # One base model: the seen / held-out split is lightning_webvid's test; this one is about real videos.
    cfg = _config(
        tmp, teacher, student, "animatelcm_ucf101", f"eval.reference_videos={tmp / 'ucf'}", held_out=False
    )
    result = evaluate(cfg, networks=networks)
    cell = result["models"]["toy_flat"]["teacher_full_2"]
    assert cell["fvd"]["num_samples"] == [4, 4]  # 4 generated clips against the 4 readable real ones
