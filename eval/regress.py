"""Regression evals: compare an evaluation's metrics.json with the baseline file in the repo.

    python -m eval.regress METRICS_JSON [--baseline eval/baselines/regress_toy.json] [--update]

For every candidate in the baseline (e.g. `student_8`) and every metric, the mean over seen and over
held-out base models is compared under the baseline's tolerances: a metric that worsens by more than its
tolerance is a regression (exit status 1, with a table of what moved); one that improves by more is
reported as an improvement (exit 0: raise the baseline with --update when it is meant). The baseline
changes only through --update, the explicit command (`make regress-update`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eval.report import METRICS, averages

DEFAULT_BASELINE = Path(__file__).resolve().parent / "baselines" / "regress_toy.json"
# Worsening allowed before a change counts as a regression: absolute for the accuracies (shares of
# clips; 64 clips per model give a standard error near 0.06 per model, ~0.03 on a six-model mean),
# relative for toy-FVD (a distance: its noise grows with its size); twice as wide for the held-out model.
DEFAULT_TOLERANCES = {"prompt_accuracy": 0.05, "style_fidelity": 0.05, "toy_fvd": 0.25}
RELATIVE = {"toy_fvd"}
# The held-out mean is one base model's 64 clips against the seen mean's five: sqrt(5) ~ 2.2 times noisier.
HELD_OUT_FACTOR = 2.0


def summarise(result: dict) -> dict:
    """{candidate: {"<metric> (<group>)": mean}}: what the baseline keeps of a metrics.json."""
    summary = {}
    for key in result["candidates"]:
        row = {}
        for metric, _, _, _ in METRICS:
            for group, value in averages(result, key, metric).items():
                row[f"{metric} ({group})"] = round(value, 4)
        summary[key] = row
    return summary


def compare(current: dict, baseline: dict) -> tuple[list[dict], list[dict], list[str]]:
    """(regressions, improvements, missing) of a summarised `current` against `baseline`
    ({"tolerances": ..., "metrics": {candidate: {name: value}}})."""
    tolerances = {**DEFAULT_TOLERANCES, **baseline.get("tolerances", {})}
    higher_is_better = {metric: better for metric, _, better, _ in METRICS}
    regressions, improvements, missing = [], [], []
    for candidate, expected in baseline["metrics"].items():
        for name, old in expected.items():
            new = current.get(candidate, {}).get(name)
            if new is None:
                missing.append(f"{candidate}: {name}")
                continue
            metric = name.split(" (")[0]
            allowed = tolerances[metric] * (abs(old) if metric in RELATIVE else 1.0)
            if "(held out)" in name:
                allowed *= float(baseline.get("held_out_factor", HELD_OUT_FACTOR))
            allowed *= float(baseline.get("candidate_factors", {}).get(candidate, 1.0))
            gain = (new - old) if higher_is_better[metric] else (old - new)
            entry = {"candidate": candidate, "metric": name, "baseline": old, "now": new, "allowed": allowed}
            if gain < -allowed:
                regressions.append(entry)
            elif gain > allowed:
                improvements.append(entry)
    return regressions, improvements, missing


def table(entries: list[dict]) -> str:
    lines = ["| candidate | metric | baseline | now | change | tolerance |", "|---|---|---|---|---|---|"]
    for e in entries:
        lines.append(
            f"| {e['candidate']} | {e['metric']} | {e['baseline']:.4f} | {e['now']:.4f} | "
            f"{e['now'] - e['baseline']:+.4f} | {e['allowed']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.regress", description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", type=Path, help="metrics.json written by `python -m eval`")
    parser.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE)
    parser.add_argument("--update", action="store_true", help="write the current metrics as the baseline")
    args = parser.parse_args(argv)
    if not args.metrics.is_file():
        print(
            f"regress: {args.metrics} not found: run the toy eval first (make regress does)", file=sys.stderr
        )
        return 2
    current = summarise(json.loads(args.metrics.read_text()))
    if args.update:
        old = json.loads(args.baseline.read_text()) if args.baseline.is_file() else {}
        payload = {
            "about": "make regress compares the short toy run's eval with these numbers; "
            "change them only with `make regress-update`",
            "tolerances": old.get("tolerances", DEFAULT_TOLERANCES),
            "held_out_factor": old.get("held_out_factor", HELD_OUT_FACTOR),
            "candidate_factors": old.get("candidate_factors", {}),
            "metrics": current,
        }
        args.baseline.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"regress: baseline written to {args.baseline}")
        return 0
    if not args.baseline.is_file():
        print(
            f"regress: no baseline at {args.baseline}; create it with `make regress-update`", file=sys.stderr
        )
        return 2
    regressions, improvements, missing = compare(current, json.loads(args.baseline.read_text()))
    if improvements:
        print("Improvements beyond tolerance (raise the baseline with `make regress-update`):")
        print(table(improvements))
    if missing:
        print("Missing from this evaluation: " + "; ".join(missing))
    if regressions:
        print("REGRESSIONS (metric worse than the baseline by more than its tolerance):")
        print(table(regressions))
        return 1
    if missing:
        return 1
    print(f"regress: no regression against {args.baseline.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
