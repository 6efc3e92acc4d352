"""python -m lightning_distill.data generate: teacher data per pool member through the data writer,
latents plus a readable preview, and a rerun keeps finished shards."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from toy_teacher_fixture import write_random_toy_teacher

from lightning_distill.data.once import clip_stats


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return write_random_toy_teacher(tmp_path_factory.mktemp("toy_teacher"))


def test_generate_writes_resumable_shards_per_member(tmp_path, teacher):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moving left\na blue square moving up\n")
    command = [
        sys.executable, "-m", "lightning_distill.data", "generate",
        f"generate.prompts_file={prompts}", f"generate.out={tmp_path / 'gen'}", f"paths.toy_teacher={teacher}",
        f"paths.output={tmp_path / 'runs'}", "generate.members=[toy_flat,toy_neon]",
        "generate.clips_per_member=6", "generate.shard_size=4", "generate.steps=2", "generate.batch_size=4",
    ]  # fmt: skip
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    result = json.loads(first.stdout[first.stdout.index("{") :])
    assert result["toy_flat"]["shards"] == 2 and result["toy_flat"]["generated_now"] == 2
    folder = tmp_path / "gen" / "toy_neon"
    stats = clip_stats(f"{folder}/gen-*.tar", frames=8, size=32)
    assert stats == {"clips": 6, "skipped": {}}
    kept = (folder / "gen-000000.tar").stat().st_mtime_ns
    (folder / "gen-000001.tar").unlink()
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    rerun = json.loads(again.stdout[again.stdout.index("{") :])
    assert rerun["toy_neon"]["generated_now"] == 1
    assert (folder / "gen-000000.tar").stat().st_mtime_ns == kept
