"""The toy metrics: what the judge makes of a set of clips and their prompts.

- prompt accuracy: share of clips whose judged shape, colour and motion all match the caption;
- style fidelity: share of clips judged to be in the style their base model carries;
- toy-FVD: Frechet distance (`eval.frechet_distance`, the project's one implementation) between the
  judge's embeddings of the clips and of real renders of the same prompts in the same style, from seeds
  the clips never used. Its scale is in docs/TOY_WORLD.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from eval import frechet_distance
from lightning_distill.toy.judge import ToyJudge, load_judge
from lightning_distill.toy.render import render_batch
from lightning_distill.toy.spec import caption_from, parse_caption
from lightning_distill.toy.world import VOCABULARY

ATTRIBUTES = ("shape", "colour", "motion")
REFERENCE_SEED = 424_242


def toy_metrics(
    videos: torch.Tensor,
    captions: Sequence[str],
    styles: str | Sequence[str],
    judge: ToyJudge | None = None,
    reference: torch.Tensor | None = None,
    reference_seed: int = REFERENCE_SEED,
    covariance: str = "unbiased",
) -> dict:
    """Metrics of `videos` (N, 3, F, H, W) in [-1, 1] generated for `captions` in `styles` (one style for
    all, or one per clip). `reference`: real clips to compare with; rendered from the same prompts and
    styles with `reference_seed` when not given."""
    captions = list(captions)
    styles = [styles] * len(captions) if isinstance(styles, str) else list(styles)
    if len(videos) != len(captions) or len(styles) != len(captions):
        raise ValueError(f"toy_metrics: {len(videos)} clips, {len(captions)} captions, {len(styles)} styles")
    judge = judge or load_judge()
    judged = judge.judge(videos)
    wanted = [parse_caption(caption) for caption in captions]
    hits = {
        name: torch.tensor(
            [VOCABULARY[name][int(p)] == w[name] for p, w in zip(judged[name], wanted, strict=True)]
        )
        for name in ATTRIBUTES
    }
    style_hits = torch.tensor(
        [VOCABULARY["style"][int(p)] == s for p, s in zip(judged["style"], styles, strict=True)]
    )
    if reference is None:
        reference = render_batch(captions, styles, reference_seed, judge.frames, judge.size)
    reference_features = judge.judge(reference)["features"]
    return {
        "clips": len(captions),
        "prompt_accuracy": float(torch.stack(list(hits.values())).all(dim=0).float().mean()),
        "style_fidelity": float(style_hits.float().mean()),
        "toy_fvd": frechet_distance(judged["features"], reference_features, covariance=covariance),
        "accuracy": {name: float(hit.float().mean()) for name, hit in hits.items()},
        "toy_fvd_convention": f"judge features ({judged['features'].shape[1]}-d), covariance {covariance}, "
        f"reference: renders of the same prompts, seed {reference_seed}",
    }


def toy_prompts(count: int, seed: int) -> list[str]:
    """`count` captions drawn uniformly over the world's shapes, colours and motions."""
    generator = torch.Generator().manual_seed(seed)
    pick = {name: torch.randint(len(VOCABULARY[name]), (count,), generator=generator) for name in ATTRIBUTES}
    return [
        caption_from(VOCABULARY["shape"][s], VOCABULARY["colour"][c], VOCABULARY["motion"][m])
        for c, s, m in zip(
            pick["colour"].tolist(), pick["shape"].tolist(), pick["motion"].tolist(), strict=True
        )
    ]
