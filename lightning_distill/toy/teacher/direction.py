"""Where does the toy teacher lose the caption's motion direction? Measurements on rendered clips, on
generated ones, and on rendered clips noised and generated back.

AnimateDiff's motion modules have no text input: "moving left" can only reach them through the frozen
image UNet's features. So when a teacher moves shapes in a direction at chance (README, "Results"),
either those features do not carry the direction, or the motion module does not use what they carry:

- ``readable``: a linear probe of each caption attribute from the features entering every motion module
  (averaged over frames and pixels, one vector per clip) at a noisy timestep. Near 1.0: the text encoder
  and image UNet deliver the direction to the motion module.
- ``relied_on``: the x0 error at high noise with the true caption, with the caption's motion word turned
  to the next direction, and with the empty prompt. The gap between the first two is how much the
  model's prediction uses the direction; the gap to the empty prompt is how much it uses the caption.
- ``worth``: how much knowing the direction could lower that error at all: the share of the clip
  latents' variance the direction explains once the colour is known (the best denoiser's gain at
  pure noise, where it predicts the conditional mean).
- ``drawn``: in generated clips of the flat base model, how often the shape's path and the trail drawn
  behind it (toy/styles.add_trail) point the caption's way. The image model alone draws the trail from
  the text, frame by frame; if the teacher's trails follow the caption but its paths do not, the motion
  module moves shapes against what its own frames show.
- ``same_noise_paths``: clips generated from the same noise with the caption's direction set to each of
  the four: whether their paths differ as the captions do (mean cosine -1/3) or follow the noise (near 1).
- ``committed``: real clips noised to a timestep and denoised back with their caption or the opposite
  direction's: from which noise level on x_t fixes the path, and whether the caption can turn it.

`python -m lightning_distill.toy direction` prints them all as JSON.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lightning_distill.diffusion.samplers import euler_moves
from lightning_distill.diffusion.schedule import CLEAN, NoiseSchedule
from lightning_distill.toy.spec import caption_from, parse_caption
from lightning_distill.toy.world import DIRECTION_VECTORS, MOTIONS, OPPOSITE_MOTION, VOCABULARY

PROBED = ("shape", "colour", "motion")


def caption_labels(captions: list[str], attribute: str) -> torch.Tensor:
    """Index of each caption's `attribute` word in VOCABULARY[attribute]."""
    return torch.tensor([VOCABULARY[attribute].index(parse_caption(c)[attribute]) for c in captions])


def turn_motion(caption: str) -> str:
    """The same caption moving the next direction round (left -> right -> up -> down -> left)."""
    motion = parse_caption(caption)["motion"]  # also rejects a caption outside the toy world
    return with_motion(caption, MOTIONS[(MOTIONS.index(motion) + 1) % len(MOTIONS)])


def probe_accuracy(features: torch.Tensor, labels: torch.Tensor, train: int, classes: int) -> float:
    """Held-out accuracy of a linear softmax probe fitted (L-BFGS, light L2) on the first `train` rows,
    features standardised by the training rows' statistics."""
    features = features.double()
    mean, std = features[:train].mean(0), features[:train].std(0) + 1e-6
    x = (features - mean) / std
    weight = torch.zeros(x.shape[1] + 1, classes, dtype=torch.float64, requires_grad=True)
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    optimizer = torch.optim.LBFGS([weight], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(design[:train] @ weight, labels[:train]) + 1e-3 * weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return float(((design[train:] @ weight).argmax(1) == labels[train:]).double().mean())


@torch.no_grad()
def motion_module_inputs(
    unet, latents: torch.Tensor, t: int, states: torch.Tensor, seed: int, batch_size: int = 64
) -> dict[str, torch.Tensor]:
    """{motion module: (B, C)} the hidden states entering each motion module of `unet` (a
    UNetMotionModel) for clips `latents` (B, 4, F, h, w) noised to `t`, averaged over frames and pixels."""
    generator = torch.Generator().manual_seed(seed)
    schedule = NoiseSchedule()
    collected: dict[str, list[torch.Tensor]] = {}
    frames = latents.shape[2]
    hooks = []
    for name, module in unet.named_modules():
        if name.endswith("motion_modules.0"):

            def keep(_module, args, name=name):
                hidden = args[0]  # (B*F, C, h, w): diffusers folds frames into the batch here
                collected.setdefault(name, []).append(
                    hidden.reshape(-1, frames, *hidden.shape[1:]).float().mean(dim=(1, 3, 4))
                )

            hooks.append(module.register_forward_pre_hook(keep))
    try:
        for start in range(0, len(latents), batch_size):
            x0 = latents[start : start + batch_size]
            timesteps = torch.full((len(x0),), t)
            noise = torch.randn(x0.shape, generator=generator)
            x_t = schedule.add_noise(x0, noise, timesteps)
            text = states[start : start + batch_size].repeat_interleave(frames, dim=0)
            unet(x_t, timesteps, encoder_hidden_states=text)
    finally:
        for hook in hooks:
            hook.remove()
    return {name: torch.cat(parts) for name, parts in collected.items()}


def readable(unet, latents, captions, states, t: int, seed: int, train_share: float = 0.75) -> dict:
    """{motion module: {attribute: held-out probe accuracy}} at timestep `t` (chance: 1 / classes)."""
    features = motion_module_inputs(unet, latents, t, states, seed)
    train = int(len(captions) * train_share)
    return {
        name: {
            attribute: round(
                probe_accuracy(
                    vectors, caption_labels(captions, attribute), train, len(VOCABULARY[attribute])
                ),
                4,
            )
            for attribute in PROBED
        }
        for name, vectors in features.items()
    }


@torch.no_grad()
def relied_on(unet, latents, encode, captions, timesteps, seed: int, batch_size: int = 32) -> dict:
    """{t: {"true": x0 MSE, "motion_turned": ..., "empty_prompt": ...}} on `latents` noised to each t
    (the same noise for the three captions); `encode(captions) -> (B, 77, D)` text states."""
    schedule = NoiseSchedule()
    frames = latents.shape[2]
    variants = {
        "true": encode(captions),
        "motion_turned": encode([turn_motion(c) for c in captions]),
        "empty_prompt": encode([""] * len(captions)),
    }
    generator = torch.Generator().manual_seed(seed)
    result = {}
    for t in timesteps:
        noise = torch.randn(latents.shape, generator=generator)
        step = torch.full((len(latents),), int(t))
        x_t = schedule.add_noise(latents, noise, step)
        row = {}
        for name, states in variants.items():
            x0 = torch.cat(
                [
                    schedule.x0_from_eps(
                        x_t[i : i + batch_size],
                        unet(
                            x_t[i : i + batch_size],
                            step[i : i + batch_size],
                            encoder_hidden_states=states[i : i + batch_size].repeat_interleave(frames, 0),
                        ).sample,
                        step[i : i + batch_size],
                    )
                    for i in range(0, len(latents), batch_size)
                ]
            )
            row[name] = round(float((x0 - latents).square().mean()), 5)
        result[str(int(t))] = row
    return result


def worth(latents: torch.Tensor, captions: list[str]) -> dict:
    """Per-element variance of `latents` left once the per-group mean is known, by what is known."""

    def residual(keys: list) -> float:
        groups: dict = {}
        for index, key in enumerate(keys):
            groups.setdefault(key, []).append(index)
        total = sum(float((latents[i] - latents[i].mean(0)).square().sum()) for i in groups.values())
        return round(total / latents.numel(), 5)

    colour = caption_labels(captions, "colour").tolist()
    motion = caption_labels(captions, "motion").tolist()
    return {
        "nothing": residual([0] * len(captions)),
        "colour": residual(colour),
        "colour_and_motion": residual(list(zip(colour, motion, strict=True))),
    }


# Flat's fills are saturated (max - min channel >= 0.57 for every colour and shade), its background is
# grey (<= 0.08), and its trail is the fill at opacity <= 0.45 over that grey (<= 0.45, blue at its
# brightest): so a threshold between trail and fill finds the shape, and one above the background finds
# shape and trail together.
FILL_SATURATION = 0.5
TRAIL_SATURATION = 0.1
# A path counts as moving when it is at least this long (px, first to last frame): a quarter of the
# shortest travel at the default size (11 px).
MIN_PATH = 3.0


def _saturation(videos: torch.Tensor) -> torch.Tensor:
    """(N, F, H, W) max minus min channel of clips (N, 3, F, H, W) in [-1, 1], in [0, 1]."""
    pixels = videos.float().add(1.0).div(2.0)
    return pixels.amax(dim=1) - pixels.amin(dim=1)


def _shape_path(saturation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From flat clips' saturation (N, F, H, W): the shape's centre per frame (N, F, 2), its path (N, 2)
    from the first frame to the last, and whether the shape is found in every frame (N,)."""
    fill, found = _centroids((saturation > FILL_SATURATION).float())
    return fill, fill[:, -1] - fill[:, 0], found.all(dim=1)


def _centroids(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, F, 2) (x, y) centre of each frame's mask (N, F, H, W) in pixels, and (N, F) whether the frame
    has any masked pixel (an empty frame's centre is 0 and must not be read)."""
    height, width = mask.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(height, device=mask.device), torch.arange(width, device=mask.device), indexing="ij"
    )
    weight = mask.sum(dim=(-1, -2))
    centre = torch.stack([(mask * xs).sum(dim=(-1, -2)), (mask * ys).sum(dim=(-1, -2))], dim=-1)
    return centre / weight.clamp_min(1)[..., None], weight > 0


def _along(vectors: torch.Tensor, captions: list[str]) -> torch.Tensor:
    """Whether each (N, 2) vector points the caption's way: its component along the caption's direction
    is more than half its length (within 60 degrees)."""
    wanted = torch.tensor(
        [DIRECTION_VECTORS[parse_caption(c)["motion"]] for c in captions],
        dtype=vectors.dtype,
        device=vectors.device,
    )
    return (vectors * wanted).sum(dim=1) > 0.5 * vectors.norm(dim=1)


def drawn(videos: torch.Tensor, captions: list[str]) -> dict:
    """Shares of flat-style clips (N, 3, F, H, W) in [-1, 1] whose shape moves the caption's way over the
    clip (``path``: first to last frame, at least MIN_PATH px), and whose trail lies behind the shape in
    the caption's direction (``trail``: the fill's centre minus the centre of fill and trail, averaged
    over frames). A clip with a frame where no fill is found (``no_fill``: their share) counts as a miss
    for both; ``path_length_px`` is the mean over the other clips. On real renders both shares are 1."""
    saturation = _saturation(videos)
    fill, path, readable = _shape_path(saturation)
    everything, _ = _centroids((saturation > TRAIL_SATURATION).float())  # found wherever fill is
    moving = path.norm(dim=1) >= MIN_PATH
    ahead_of_trail = (fill - everything).mean(dim=1)
    lengths = path.norm(dim=1)[readable]
    return {
        "path": round(float((_along(path, captions) & moving & readable).double().mean()), 4),
        "trail": round(float((_along(ahead_of_trail, captions) & readable).double().mean()), 4),
        "path_length_px": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
        "no_fill": round(float((~readable).double().mean()), 4),
    }


def with_motion(caption: str, motion: str) -> str:
    """The same caption moving `motion` instead; either outside the toy world raises parse_caption's error."""
    labels = parse_caption(caption)
    changed = caption_from(labels["shape"], labels["colour"], motion)
    parse_caption(changed)
    return changed


def same_noise_paths(videos_by_motion: dict[str, torch.Tensor]) -> float | None:
    """Mean cosine between the paths of clips generated from the same noise with captions that differ
    only in their direction (clip k of every entry from noise k), over every pair of directions and every
    clip whose shape is found in both and moves (at least MIN_PATH px in both). Paths the caption decides:
    -1/3 over left/right/up/down (opposite pairs -1, crossing pairs 0); paths the noise decides: near 1.
    None when no clip can be compared."""
    paths = {motion: _shape_path(_saturation(videos))[1:] for motion, videos in videos_by_motion.items()}
    cosines = []
    motions = list(paths)
    for i, first in enumerate(motions):
        for second in motions[i + 1 :]:
            (a, found_a), (b, found_b) = paths[first], paths[second]
            both = found_a & found_b & (a.norm(dim=1) >= MIN_PATH) & (b.norm(dim=1) >= MIN_PATH)
            cosines.append(F.cosine_similarity(a[both], b[both], dim=1))
    compared = torch.cat(cosines)
    return round(float(compared.mean()), 4) if len(compared) else None


@torch.no_grad()
def committed(
    denoise,
    latents,
    captions,
    encode,
    decode,
    timesteps,
    seed: int,
    steps: int = 20,
    guidance_scale: float = 7.5,
    batch_size: int = 32,
) -> dict:
    """Where the path is decided. Real flat clips (latents, with their captions) are noised to each t
    (one noise for all t) and denoised back to clean by `steps` Euler moves with CFG, once with their
    caption and once with the opposite direction's; {t: {"true_caption", "opposite_caption"}} are the
    shares of decoded paths along the *clip's own* direction (drawn's test). Where x_t already fixes the
    path both are near 1; where the caption decides it the first is near 1 and the second near 0; where
    neither does, both are low, as for paths in a random direction.

    denoise(x_t, t, per-frame states) -> eps; encode(captions) -> (B, L, D); decode(latents) -> video."""
    schedule = NoiseSchedule()
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed))
    empty = encode([""] * len(captions))
    variants = {
        "true_caption": encode(captions),
        "opposite_caption": encode(
            [with_motion(c, OPPOSITE_MOTION[parse_caption(c)["motion"]]) for c in captions]
        ),
    }
    result = {}
    for t_start in timesteps:
        grid = [*torch.linspace(int(t_start), 0, steps).round().long().tolist(), CLEAN]
        x_t = schedule.add_noise(latents, noise, torch.full((len(latents),), int(t_start)))
        row = {}
        for name, states in variants.items():
            parts = [
                euler_moves(
                    denoise,
                    x_t[i : i + batch_size],
                    grid,
                    states[i : i + batch_size],
                    schedule=schedule,
                    guidance_scale=guidance_scale,
                    negative_prompt_embeds=empty[i : i + batch_size],
                )
                for i in range(0, len(latents), batch_size)
            ]
            row[name] = drawn(decode(torch.cat(parts)), captions)["path"]
        result[str(int(t_start))] = row
    return result
