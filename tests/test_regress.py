"""The regression comparison: a worse student fails with a readable diff, a better one is reported and
passes, noise within tolerance is quiet, the baseline changes only with --update."""

from __future__ import annotations

import copy
import json

from eval.regress import compare, main, summarise


def _metrics(prompt=0.8, style=0.95, fvd=20.0) -> dict:
    models = {}
    for name, seen in (("toy_flat", True), ("toy_neon", True), ("toy_pastel", False)):
        models[name] = {
            "seen": seen,
            "style": name[4:],
            "student_8": {"prompt_accuracy": prompt, "style_fidelity": style, "toy_fvd": fvd},
        }
    return {"candidates": {"student_8": {"family": "student", "steps": 8, "label": "s"}}, "models": models}


def test_summary_keeps_seen_and_held_out_means():
    summary = summarise(_metrics())
    assert summary["student_8"]["prompt_accuracy (seen)"] == 0.8
    assert summary["student_8"]["toy_fvd (held out)"] == 20.0


def test_worse_student_is_a_regression_better_one_an_improvement():
    baseline = {"metrics": summarise(_metrics())}
    regressions, improvements, _ = compare(summarise(_metrics(prompt=0.6, fvd=35.0)), baseline)
    assert {r["metric"] for r in regressions} == {
        "prompt_accuracy (seen)", "prompt_accuracy (held out)", "toy_fvd (seen)", "toy_fvd (held out)",
    }  # fmt: skip
    assert not improvements
    regressions, improvements, _ = compare(summarise(_metrics(prompt=0.95, fvd=8.0)), baseline)
    assert not regressions and len(improvements) == 4
    assert compare(summarise(_metrics(prompt=0.78, fvd=22.0)), baseline)[:2] == ([], [])


def test_cli_exit_status_diff_and_update(tmp_path, capsys):
    baseline = tmp_path / "baseline.json"
    current = tmp_path / "metrics.json"
    current.write_text(json.dumps(_metrics()))
    assert main([str(current), "--baseline", str(baseline)]) == 2  # no baseline yet: says how to make one
    assert main([str(current), "--baseline", str(baseline), "--update"]) == 0
    written = json.loads(baseline.read_text())
    assert main([str(current), "--baseline", str(baseline)]) == 0
    worse = copy.deepcopy(_metrics(style=0.5))
    current.write_text(json.dumps(worse))
    capsys.readouterr()
    assert main([str(current), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSIONS" in out and "style_fidelity (seen)" in out and "-0.4500" in out
    assert json.loads(baseline.read_text()) == written  # a failing check never rewrites the baseline


def test_a_noisier_candidate_gets_its_wider_tolerance():
    baseline = {"metrics": summarise(_metrics()), "candidate_factors": {"student_8": 2.5}}
    regressions, _, _ = compare(summarise(_metrics(style=0.85)), baseline)  # -0.10 < 0.05 x 2.5 seen
    assert [r["metric"] for r in regressions] == []
    regressions, _, _ = compare(summarise(_metrics(style=0.80)), {"metrics": baseline["metrics"]})
    assert "style_fidelity (seen)" in [r["metric"] for r in regressions]
