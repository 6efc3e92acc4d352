"""The README's teacher table is generated from teacher.json's quality record, every number in it, and
is the shipped teacher's."""

from __future__ import annotations

from pathlib import Path

from lightning_distill.toy.teacher import folder as parts
from lightning_distill.toy.teacher.quality import quality_table


def test_quality_table_has_every_base_model_and_number():
    metrics = {"prompt_accuracy": 0.5, "style_fidelity": 0.875, "toy_fvd": 12.34}
    full = {**metrics, "accuracy": {"shape": 0.9, "colour": 1.0, "motion": 0.55}}
    naive = {str(s): {**metrics, "prompt_accuracy": s / 10, "toy_fvd": 100.0 * s} for s in (1, 2, 4, 8)}
    quality = {
        "protocol": {"clips_per_style": 256, "seed": 1234},
        "held_out": "toy_pastel",
        "teacher_full": {"toy_flat": full, "toy_pastel": full},
        "teacher_naive": {"toy_flat": naive, "toy_pastel": naive},
    }
    table = quality_table(quality)
    assert "| toy_pastel (held out) | 0.500 (0.90 / 1.00 / 0.55) | 0.875 | 12.3 |" in table
    assert "0.100 / 0.200 / 0.400 / 0.800 | 100 / 200 / 400 / 800 |" in table
    assert "256 clips per base model, seed 1234" in table


def test_readme_shows_the_shipped_teachers_table():
    # The README's teacher table is the shipped teacher.json's, row for row: a reinstalled teacher
    # whose README was not regenerated fails here.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = [
        line
        for line in quality_table(parts.read_info(parts.SHIPPED)["quality"]).splitlines()
        if line.startswith("|")
    ]
    assert len(rows) == 8
    missing = [row for row in rows if row not in readme]
    assert not missing, f"README.md lacks these rows of the shipped teacher's quality table: {missing}"
