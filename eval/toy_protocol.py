"""The toy protocol: every candidate on every toy base model (the pool's styles and the held-out one),
the same prompts and noise for all, scored by the judge (prompt accuracy, style fidelity, toy-FVD).
Clips are cached per (candidate, base model) (eval/generation.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm.auto import tqdm

from eval.candidates import Candidate
from eval.generation import CandidateGenerator, cached_videos

log = logging.getLogger("eval")


def toy_base_models(teacher_dir: str) -> dict:
    from lightning_distill.models.base_model import BaseModelSpec
    from lightning_distill.toy.world import HELD_OUT_STYLE, STYLES, base_model_of

    return {
        base_model_of(style): (
            BaseModelSpec(base_model_of(style), "toy", teacher_dir, style),
            style != HELD_OUT_STYLE,
        )
        for style in STYLES
    }


def run_toy_protocol(candidates: list[Candidate], cfg, out: Path) -> dict:
    """{base model: {"seen": bool, "style": str, candidate key: metrics}} for every candidate."""
    from lightning_distill.models.loading import load_base_model
    from lightning_distill.toy.metrics import toy_metrics, toy_prompts

    prompts = toy_prompts(int(cfg.clips_per_style), int(cfg.seed))
    generator = CandidateGenerator(int(cfg.frames), int(cfg.size), int(cfg.seed))
    results = {}
    loaded: dict[str, object] = {}

    def base_of(name, spec):
        if name not in loaded:
            loaded.clear()  # one base model in memory at a time
            loaded[name] = load_base_model(spec)
        return loaded[name]

    cells = [
        (name, spec, seen, c)
        for name, (spec, seen) in toy_base_models(str(cfg.teacher)).items()
        for c in candidates
    ]
    for name, spec, seen, candidate in tqdm(cells, desc="toy protocol", unit="cell"):
        row = results.setdefault(name, {"seen": seen, "style": spec.style})
        videos = cached_videos(
            out, candidate.key, name, lambda c=candidate, n=name, s=spec: generator(c, base_of(n, s), prompts)
        )
        row[candidate.key] = toy_metrics(videos, prompts, spec.style)
        log.info("%s on %s: prompt accuracy %.3f", candidate.key, name, row[candidate.key]["prompt_accuracy"])
    return results
