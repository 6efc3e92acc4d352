"""python -m lightning_distill.sample writes an mp4 and a gif per prompt, and says how to make a missing
toy teacher."""

from __future__ import annotations

import json
import subprocess
import sys

import av
import pytest
from PIL import Image
from toy_teacher_fixture import write_random_toy_teacher


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return write_random_toy_teacher(tmp_path_factory.mktemp("toy_teacher"))


def run_sample(*overrides):
    return subprocess.run(
        [sys.executable, "-m", "lightning_distill.sample", *overrides],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sample_writes_an_mp4_and_a_gif_per_prompt(tmp_path, teacher):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moving left\n\na blue square moving up\n")
    result = run_sample(
        f"paths.toy_teacher={teacher}", f"prompts_file={prompts}", f"out={tmp_path / 'out'}",
        "sampler=euler", "steps=2", "guidance_scale=1", "base_model=toy_neon",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads(result.stdout)["written"]
    assert len(written) == 4
    mp4 = next(p for p in written if p.endswith(".mp4"))
    with av.open(mp4) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (128, 128, 3)  # 32 px upscaled 4x
    gif = Image.open(next(p for p in written if p.endswith(".gif")))
    assert gif.n_frames == 8


def test_missing_toy_teacher_says_how_to_make_it(tmp_path):
    result = run_sample(f"paths.toy_teacher={tmp_path / 'nothing'}", f"out={tmp_path / 'out'}")
    assert result.returncode != 0
    assert "+experiment=toy_teacher" in result.stderr
