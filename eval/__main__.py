"""`python -m eval run=<run dir or motion module> +eval=toy`: the evaluation harness (conf/evaluate.yaml).

Generates with every student of the run (each stage's student at its step count, or at each of
`students_at`), the teacher at its full sampler and naively at few steps, and the AnimateLCM-style
baseline when `baseline_run` is given; scores every set per base model; writes metrics.json, report.md
and report.html.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from lightning_distill.config import CONF_DIR

log = logging.getLogger("eval")


def candidates_for(cfg: DictConfig) -> list:
    from eval.candidates import Candidate, baseline_of, release_baseline, students_of

    protocol = cfg.eval
    teacher = str(protocol.teacher_motion_module)
    found = students_of(cfg.run, cfg.get("students_at"))
    found += [Candidate("teacher_naive", int(s), teacher) for s in protocol.naive_steps]
    full = protocol.teacher_full
    if full is not None:  # null leaves the teacher's full sampler out (make regress, to fit CI)
        found.append(
            Candidate("teacher_full", int(full.steps), teacher, str(full.sampler), float(full.guidance_scale))
        )
    found += baseline_of(cfg.get("baseline_run"))
    if protocol.get("animatelcm_release") and protocol.animatelcm_release.enabled:
        found += release_baseline(protocol.animatelcm_release)
    return found


def evaluate(cfg: DictConfig, networks=None) -> dict:
    """Run the chosen protocol. `networks`: metric networks to use instead of loading the weights files
    (tests pass randomly initialised ones; every number they give is marked as no metric)."""
    from eval.generation import cached_clips
    from eval.report import markdown, write_html
    from lightning_distill.atomic import write_bytes_atomic

    if "eval" not in cfg:
        raise ValueError("choose a protocol: +eval=toy (conf/eval/ lists them)")
    out = Path(str(cfg.out))
    out.mkdir(parents=True, exist_ok=True)
    candidates = candidates_for(cfg)
    protocol = OmegaConf.to_container(cfg.eval, resolve=True)
    if cfg.eval.name == "toy":
        from eval.toy_protocol import run_toy_protocol
        from lightning_distill.toy.metrics import toy_prompts

        models = run_toy_protocol(candidates, cfg.eval, out)
        prompts = toy_prompts(int(cfg.eval.clips_per_style), int(cfg.eval.seed))
    else:
        from eval.paper_protocol import Networks, protocol_prompts, run_paper_protocol

        protocol.pop("base_models")  # the specs: their names are the models' keys
        networks = networks or Networks.from_config(cfg.eval, str(cfg.paths.weights), str(cfg.eval.device))
        models = run_paper_protocol(candidates, cfg.eval, out, networks)
        prompts = protocol_prompts(cfg.eval)
    result = {
        "protocol": {**protocol, "prompts": prompts[:2]},
        "run": str(cfg.run),
        "candidates": {
            c.key: {
                "family": c.family,
                "steps": c.steps,
                "label": c.label,
                "motion_module": c.motion_module,
                "stage": c.stage,
            }
            for c in candidates
        },
        "models": models,
    }
    write_bytes_atomic(out / "metrics.json", (json.dumps(result, indent=2) + "\n").encode())
    write_bytes_atomic(out / "report.md", markdown(result).encode())
    write_html(result, out, lambda key, name: cached_clips(out, key, name, 2))
    log.info("evaluation written to %s", out)
    return result


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    result = evaluate(cfg)
    print(json.dumps({"out": str(cfg.out), "models": len(result["models"])}))


if __name__ == "__main__":
    main()
