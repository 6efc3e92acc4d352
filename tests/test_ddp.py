"""Cross-model training on two CPU processes (gloo): each rank hosts its own pool member, the shared
motion module stays identical across ranks, and each rank keeps its own frozen base model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from toy_teacher_fixture import tiny_run_overrides, write_random_toy_teacher


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_share_the_motion_module_and_keep_their_base_models(tmp_path):
    teacher = write_random_toy_teacher(tmp_path / "teacher")
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "lightning_distill", "+experiment=8step", *tiny_run_overrides(tmp_path, teacher),
        "trainer.devices=2", "+trainer.strategy=ddp_find_unused_parameters_true", f"hydra.run.dir={run_dir}",
        "samples.every_n_iterations=0",
    ]  # fmt: skip
    port = str(free_port())
    processes = []
    for rank in (0, 1):
        env = {
            **os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": "2",
            "LOCAL_RANK": str(rank), "NODE_RANK": "0", "RANK": str(rank),
        }  # fmt: skip
        processes.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    outputs = [p.communicate(timeout=900) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
    for stage in ("stage_0_mse_128_to_32", "stage_1_adversarial_32_to_8"):
        ranks = json.loads((run_dir / stage / "summary.json").read_text())["ranks"]
        assert [r["members"] for r in ranks] == [["toy_flat"], ["toy_neon"]]
        assert ranks[0]["motion_checksum"] == ranks[1]["motion_checksum"]
        assert ranks[0]["image_checksums"]["toy_flat"] != ranks[1]["image_checksums"]["toy_neon"]
