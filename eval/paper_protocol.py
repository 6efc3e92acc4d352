"""The paper-world protocols: real base models, FVD, FID and CLIP score per base model.

- `lightning_webvid` (ADL Table 2): 100 WebVid-style prompts; every candidate against the AnimateDiff
  teacher at 32 Euler steps with CFG 7.5 (the reference set: FVD and FID are distances to its clips);
  RealisticVision and ToonYou seen, DreamShaper and DynaVision held out.
- `animatelcm_ucf101` (ALCM Table 1): UCF-101 class prompts, 24 videos per class, 16 frames at 512x512;
  FVD and FID against real UCF-101 clips from a folder the user points to; CLIP score with ViT-H-14.

The metric networks load from local files (eval/weights.py: the error for a missing one names the file,
where it is published and the config key). Clips are cached like the toy protocol's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from tqdm.auto import tqdm

from eval.candidates import Candidate
from eval.generation import CandidateGenerator, cached_videos, to_float

log = logging.getLogger("eval")
VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov")


@dataclass
class Networks:
    """The metric networks a protocol uses (None: that metric is not computed)."""

    i3d: object | None = None
    inception: object | None = None
    clip: object | None = None

    @classmethod
    def from_config(cls, cfg, weights_dir: str, device: str) -> Networks:
        from eval.clip_score import load_clip
        from eval.fid import load_inception
        from eval.fvd import load_i3d

        wanted, files = set(cfg.metrics), cfg.weights
        return cls(
            i3d=load_i3d(files.i3d, weights_dir, device) if "fvd" in wanted else None,
            inception=load_inception(files.inception, weights_dir, device) if "fid" in wanted else None,
            clip=load_clip(cfg.clip_model, files.clip, weights_dir, device)
            if "clip_score" in wanted
            else None,
        )


def protocol_prompts(cfg) -> list[str]:
    """`num_prompts` prompts of the prompts file (all when null), each `videos_per_prompt` times."""
    from lightning_distill.data.generate import read_prompts

    prompts = read_prompts(str(cfg.prompts_file))
    if cfg.get("num_prompts"):
        prompts = prompts[: int(cfg.num_prompts)]
    return [p for p in prompts for _ in range(int(cfg.videos_per_prompt))]


def read_reference_videos(folder: str, frames: int, size: int, limit: int | None = None) -> torch.Tensor:
    """Real clips (N, 3, F, S, S) in [-1, 1] from the video files under `folder`: the first `frames` frames,
    shorter side to S, centre crop. Files that do not decode or are too short are skipped and counted."""
    from lightning_distill.data.video import ClipError, ClipSpec, decode_clip

    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES) if root.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"eval.reference_videos={folder}: no video files ({', '.join(VIDEO_SUFFIXES)}) there; point it at "
            "the real clips to compare with (UCF-101: https://www.crcv.ucf.edu/data/UCF101.php)"
        )
    spec, clips, skipped = ClipSpec(frames=frames, size=size, interpolation="BILINEAR"), [], 0
    for path in tqdm(files[:limit] if limit else files, desc="reference videos", unit="clip"):
        try:
            clips.append(torch.from_numpy(decode_clip(path.read_bytes(), spec)))
        except ClipError as error:
            skipped += 1
            log.warning("reference video %s skipped: %s", path, error)
    if not clips:
        raise ValueError(
            f"eval.reference_videos={folder}: none of {len(files)} files decodes to {frames} frames"
        )
    if skipped:
        log.warning("reference videos: %d of %d files skipped", skipped, len(files))
    return to_float(torch.stack(clips).permute(0, 4, 1, 2, 3))


def score(videos, reference, prompts, networks: Networks, cfg) -> dict:
    """Every metric the protocol asks for, as MetricResult records (an untrained network says so)."""
    from eval.clip_score import clip_score
    from eval.fid import fid
    from eval.fvd import fvd

    batch, device, result = int(cfg.metric_batch_size), str(cfg.device), {}
    if networks.i3d is not None and reference is not None:
        result["fvd"] = fvd(
            videos,
            reference,
            networks.i3d,
            str(cfg.i3d_preset),
            int(cfg.fvd_frames),
            batch_size=batch,
            device=device,
        ).as_dict()
    if networks.inception is not None and reference is not None:
        result["fid"] = fid(videos, reference, networks.inception, batch_size=batch, device=device).as_dict()
    if networks.clip is not None:
        result["clip_score"] = clip_score(
            videos, prompts, networks.clip, batch_size=batch, device=device
        ).as_dict()
    return result


def run_paper_protocol(candidates: list[Candidate], cfg, out: Path, networks: Networks) -> dict:
    """{base model: {"seen": bool, candidate key: {metric: record}}}."""
    from lightning_distill.models.loading import load_base_model

    prompts = protocol_prompts(cfg)
    generator = CandidateGenerator(
        int(cfg.frames), int(cfg.size), int(cfg.seed), int(cfg.batch_size), str(cfg.device)
    )
    real = None
    if cfg.reference == "videos":
        real = read_reference_videos(
            str(cfg.reference_videos), int(cfg.frames), int(cfg.size), cfg.get("reference_limit")
        )
    elif not any(c.key == cfg.reference for c in candidates):
        raise ValueError(
            f"eval.reference={cfg.reference}: not 'videos' and not a candidate of this evaluation"
        )
    results = {}
    for name, spec_cfg in cfg.base_models.items():
        spec = instantiate(spec_cfg)
        base = None
        row = results.setdefault(name, {"seen": name not in set(cfg.held_out), "style": spec.style})
        clips = {}
        for candidate in candidates:

            def produce(candidate=candidate, spec=spec):
                nonlocal base
                base = base or load_base_model(spec)
                return generator(candidate, base, prompts)

            clips[candidate.key] = cached_videos(out, candidate.key, name, produce)
        reference = real if real is not None else clips[str(cfg.reference)]
        for candidate in tqdm(candidates, desc=f"metrics on {name}", unit="candidate"):
            own_reference = candidate.key == cfg.reference
            row[candidate.key] = score(
                clips[candidate.key], None if own_reference else reference, prompts, networks, cfg
            )
            log.info(
                "%s on %s: %s",
                candidate.key,
                name,
                {k: round(v["value"], 3) for k, v in row[candidate.key].items()},
            )
        del base
    return results
