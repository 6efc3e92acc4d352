"""A run's toy metrics take the chain's teacher's numbers from its teacher.json only when they were
measured under the run's protocol (the same prompts, clip count and seed)."""

from __future__ import annotations

from omegaconf import OmegaConf

from lightning_distill.stages.run_metrics import teacher_from_info
from lightning_distill.toy.teacher.folder import write_info


def _cfg(folder, clips=256, seed=1234):
    return OmegaConf.create(
        {
            "teacher": {"motion_module": str(folder / "motion_module")},
            "metrics": {"clips_per_style": clips, "seed": seed},
        }
    )


def test_the_teachers_recorded_numbers_are_used_under_the_same_protocol_only(tmp_path):
    full, naive4 = {"prompt_accuracy": 0.9}, {"prompt_accuracy": 0.3}
    write_info(
        tmp_path,
        {
            "quality": {
                "protocol": {"clips_per_style": 256, "seed": 1234},
                "teacher_full": {"toy_flat": full},
                "teacher_naive": {"toy_flat": {"4": naive4, "8": {"prompt_accuracy": 0.5}}},
            }
        },
    )
    assert teacher_from_info(_cfg(tmp_path), 4) == ({"toy_flat": full}, {"toy_flat": naive4})
    assert teacher_from_info(_cfg(tmp_path), 3) == ({"toy_flat": full}, {})  # never ran at 3 steps
    assert teacher_from_info(_cfg(tmp_path, clips=64), 4) == ({}, {})
    assert teacher_from_info(_cfg(tmp_path, seed=1), 4) == ({}, {})
    assert teacher_from_info(_cfg(tmp_path / "elsewhere"), 4) == ({}, {})
