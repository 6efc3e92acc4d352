"""The motion-direction diagnostics (toy/teacher/direction.py): its parts on data whose answer is known,
then the command on the shipped teacher."""

import json

import pytest
import torch

from lightning_distill.diffusion.schedule import NoiseSchedule
from lightning_distill.toy.__main__ import main
from lightning_distill.toy.metrics import toy_prompts
from lightning_distill.toy.render import render_batch
from lightning_distill.toy.teacher import direction
from lightning_distill.toy.world import MOTIONS


def test_turn_motion_goes_round_every_direction_and_keeps_the_rest():
    caption = "a red circle moving left"
    seen = [caption]
    for _ in range(4):
        seen.append(direction.turn_motion(seen[-1]))
    assert seen[1:] == [
        "a red circle moving right",
        "a red circle moving up",
        "a red circle moving down",
        "a red circle moving left",
    ]
    labels = direction.caption_labels(["a blue square moving down", "a red circle moving left"], "motion")
    assert labels.tolist() == [3, 0]
    assert direction.caption_labels(["a blue square moving down"], "shape").tolist() == [1]


def test_probe_reads_a_linearly_coded_label_and_not_a_random_one():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(4, (400,), generator=generator)
    codes = torch.randn(4, 16, generator=generator)
    coded = codes[labels] + 0.3 * torch.randn(400, 16, generator=generator)
    assert direction.probe_accuracy(coded, labels, 300, 4) > 0.95
    unrelated = torch.randn(400, 16, generator=generator)
    assert direction.probe_accuracy(unrelated, labels, 300, 4) < 0.45


def test_worth_counts_what_the_direction_explains_beyond_the_colour():
    captions = toy_prompts(256, 3)
    motion = direction.caption_labels(captions, "motion").float()
    colour = direction.caption_labels(captions, "colour").float()
    noise = 0.1 * torch.randn(256, 4, 2, 2, 2, generator=torch.Generator().manual_seed(1))
    latents = noise + (colour + 2 * motion).view(-1, 1, 1, 1, 1)
    shares = direction.worth(latents, captions)
    assert shares["colour_and_motion"] < 0.02 < shares["colour"] < shares["nothing"]


def test_drawn_reads_paths_and_trails_of_real_clips_and_tells_a_reversed_path():
    captions = toy_prompts(64, 5)
    real = render_batch(captions, "flat", 6)
    found = direction.drawn(real, captions)
    assert found["path"] > 0.95 and found["trail"] > 0.85 and found["no_fill"] == 0.0
    assert found["path_length_px"] > 10  # the spec's travel at 32 px: 11-18 px
    # Played backwards, the shape moves against its caption while every frame keeps its trail.
    backwards = direction.drawn(real.flip(2), captions)
    assert backwards["path"] < 0.05 and abs(backwards["trail"] - found["trail"]) < 1e-6
    # A shape held still (the first frame repeated) has no path the caption's way.
    still = direction.drawn(real[:, :, :1].expand_as(real), captions)
    assert still["path"] == 0.0 and still["path_length_px"] == 0.0
    # A clip whose shape is gone from one frame (painted over with the background) is not read at all.
    gone = real.clone()
    gone[0, :, 3] = gone[0, :, 3, :1, :1]
    lost = direction.drawn(gone, captions)
    assert lost["no_fill"] == pytest.approx(1 / 64, abs=1e-4)
    assert lost["path"] == pytest.approx(found["path"] - 1 / 64, abs=1e-4)


def test_same_noise_paths_tell_paths_the_caption_sets_from_paths_the_noise_sets():
    captions = toy_prompts(32, 7)
    # Real renders move the way their captions say: opposite pairs -1, crossing pairs 0.
    by_caption = {
        m: render_batch([direction.with_motion(c, m) for c in captions], "flat", 8) for m in MOTIONS
    }
    assert direction.same_noise_paths(by_caption) == pytest.approx(-1 / 3, abs=0.05)
    # One clip set for every caption: its paths are the noise's, whatever the caption says.
    one = by_caption["left"]
    assert direction.same_noise_paths({m: one for m in MOTIONS}) == pytest.approx(1.0, abs=1e-4)


def _oracle(clips, captions, follows_caption: bool):
    """A denoiser that knows each clip (pixels stand in for latents; fewer clips than committed's batch):
    its eps leads to the clip itself, or, when it follows the caption and the caption says the opposite
    direction, to the clip played backwards. Text states: the direction's index + 1, 0 for the empty
    prompt. Under CFG the unconditional half (first) is given the conditional half's target, so that the
    guided eps is exact."""
    schedule = NoiseSchedule()
    frames = clips.shape[2]
    own = torch.tensor([MOTIONS.index(direction.parse_caption(c)["motion"]) for c in captions])

    def encode(texts):
        return torch.tensor(
            [0.0 if t == "" else MOTIONS.index(direction.parse_caption(t)["motion"]) + 1.0 for t in texts]
        ).view(-1, 1, 1)

    def denoise(x_t, t, states):
        said = states[::frames, 0, 0].long()[-len(clips) :] - 1  # the conditional half
        backwards = (said != own) if follows_caption else torch.zeros(len(clips), dtype=torch.bool)
        target = torch.where(backwards.view(-1, 1, 1, 1, 1), clips.flip(2), clips)
        target = target.repeat(len(x_t) // len(clips), 1, 1, 1, 1)
        alpha_bar = schedule.alpha_bar(t, like=x_t)
        return (x_t - alpha_bar.sqrt() * target) / (1 - alpha_bar).sqrt()

    return denoise, encode


def test_committed_tells_a_path_x_t_fixes_from_one_the_caption_turns():
    captions = toy_prompts(16, 9)
    clips = render_batch(captions, "flat", 10)
    for follows_caption, opposite in ((False, 1.0), (True, 0.0)):
        denoise, encode = _oracle(clips, captions, follows_caption)
        found = direction.committed(denoise, clips, captions, encode, lambda x: x, [999, 500], 0, steps=4)
        assert found == {t: {"true_caption": 1.0, "opposite_caption": opposite} for t in ("999", "500")}


def test_with_motion_changes_only_the_direction_and_rejects_an_unknown_one():
    assert direction.with_motion("a red circle moving left", "up") == "a red circle moving up"
    with pytest.raises(ValueError, match="outside the toy world"):
        direction.with_motion("a red circle moving left", "sideways")


def _direction_report(capsys, *options: str) -> dict:
    main(["direction", "--clips", "96", "--timesteps", "950", *options])
    return json.loads(capsys.readouterr().out)


def _check_probes(report: dict) -> None:
    for model in ("teacher", "image_only"):
        readable = report[model]["readable"]
        assert len(readable) == 9  # AnimateDiff v2: four down levels, the mid block, four up levels
        # Pure noise in, so the caption is the only source: its colour must be readable before the first
        # motion module (the image UNet draws the right colour almost always, README "Results").
        assert readable["down_blocks.0.motion_modules.0"]["colour"] > 0.8
        errors = report[model]["relied_on"]["950"]
        assert errors["true"] < errors["empty_prompt"]  # the caption helps the prediction
    assert report["worth"]["colour_and_motion"] < report["worth"]["colour"] < report["worth"]["nothing"]


def _check_drawn(report: dict) -> None:
    assert report["real_drawn"]["path"] > 0.9
    for model in ("teacher", "image_only"):
        assert set(report[model]["drawn"]) == {"path", "trail", "path_length_px", "no_fill"}
    # The teacher's shapes travel (README "Results"), whichever way they go, and are found in every frame.
    assert report["teacher"]["drawn"]["path_length_px"] > 5
    assert report["teacher"]["drawn"]["no_fill"] < 0.2


def test_direction_command_on_the_shipped_teacher(capsys):
    # Every report but same_noise_paths, each on few clips: the full sampler's generations are what take
    # the time (the complete command is the slow test below).
    report = _direction_report(
        capsys, "--drawn-clips", "8", "--same-noise-clips", "0", "--committed-clips", "2",
        "--committed-timesteps", "700",
    )  # fmt: skip
    _check_probes(report)
    _check_drawn(report)
    for model in ("teacher", "image_only"):
        assert "same_noise_paths" not in report[model]  # 0 clips: the report is left out, not empty
        assert set(report[model]["committed"]) == {"700"}
        assert all(0.0 <= share <= 1.0 for share in report[model]["committed"]["700"].values())


@pytest.mark.slow
def test_direction_command_with_every_report(capsys):
    report = _direction_report(
        capsys, "--drawn-clips", "24", "--same-noise-clips", "8", "--committed-clips", "8",
        "--committed-timesteps", "999", "700",
    )  # fmt: skip
    _check_probes(report)
    _check_drawn(report)
    for model in ("teacher", "image_only"):
        assert -1.0 <= report[model]["same_noise_paths"] <= 1.0
        committed = report[model]["committed"]
        assert set(committed) == {"999", "700"}
        assert all(0.0 <= share <= 1.0 for row in committed.values() for share in row.values())
