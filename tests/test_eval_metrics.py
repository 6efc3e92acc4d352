"""FVD (I3D), FID (torch-fidelity Inception) and CLIP score on randomly initialised networks of the real
architectures, the weights registry's errors, and the published FVD test vector when its weights exist."""

import json
import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tiny_models import TINY_CLIP, tiny_clip_scorer
from tiny_models import he_init as _he_init
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from eval import frechet_distance
from eval.clip_score import clip_frame_scores, clip_score, load_clip
from eval.fid import fid, inception_features, load_inception, untrained_inception_v3
from eval.fvd import I3DDetector, fvd, i3d_features, load_i3d, preprocess_clips
from eval.i3d import I3D, same_padding
from eval.weights import WEIGHTS_DIR_ENV, MissingWeightsError, resolve_weights

# --- I3D: the key layout of pytorch-i3d's InceptionI3d, written from the published spec ---------------

# [b0, b1a, b1b, b2a, b2b, b3b] per block (METRICS.md), input channels chained from the previous block.
_SPEC = [
    ("Mixed_3b", [64, 96, 128, 16, 32, 32]),
    ("Mixed_3c", [128, 128, 192, 32, 96, 64]),
    ("Mixed_4b", [192, 96, 208, 16, 48, 64]),
    ("Mixed_4c", [160, 112, 224, 24, 64, 64]),
    ("Mixed_4d", [128, 128, 256, 24, 64, 64]),
    ("Mixed_4e", [112, 144, 288, 32, 64, 64]),
    ("Mixed_4f", [256, 160, 320, 32, 128, 128]),
    ("Mixed_5b", [256, 160, 320, 32, 128, 128]),
    ("Mixed_5c", [384, 192, 384, 48, 128, 128]),
]


def _unit_keys(prefix, out_channels, in_channels, kernel):
    keys = {f"{prefix}.conv3d.weight": (out_channels, in_channels, kernel, kernel, kernel)}
    for stat in ("weight", "bias", "running_mean", "running_var"):
        keys[f"{prefix}.bn.{stat}"] = (out_channels,)
    keys[f"{prefix}.bn.num_batches_tracked"] = ()
    return keys


def _pytorch_i3d_layout() -> dict[str, tuple[int, ...]]:
    layout = {}
    layout |= _unit_keys("Conv3d_1a_7x7", 64, 3, 7)
    layout |= _unit_keys("Conv3d_2b_1x1", 64, 64, 1)
    layout |= _unit_keys("Conv3d_2c_3x3", 192, 64, 3)
    channels = 192
    for block, (b0, b1a, b1b, b2a, b2b, b3b) in _SPEC:
        layout |= _unit_keys(f"{block}.b0", b0, channels, 1)
        layout |= _unit_keys(f"{block}.b1a", b1a, channels, 1)
        layout |= _unit_keys(f"{block}.b1b", b1b, b1a, 3)
        layout |= _unit_keys(f"{block}.b2a", b2a, channels, 1)
        layout |= _unit_keys(f"{block}.b2b", b2b, b2a, 3)
        layout |= _unit_keys(f"{block}.b3b", b3b, channels, 1)
        channels = b0 + b1b + b2b + b3b
    layout["logits.conv3d.weight"] = (400, channels, 1, 1, 1)
    layout["logits.conv3d.bias"] = (400,)
    return layout


def _random_state(layout: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.05
    return state


def test_i3d_state_dict_keys_are_pytorch_i3d_endpoints():
    layout = _pytorch_i3d_layout()
    assert layout["logits.conv3d.weight"] == (400, 1024, 1, 1, 1)
    ours = {key: tuple(value.shape) for key, value in I3D().state_dict().items()}
    assert ours == layout


def test_i3d_state_dict_file_loads_strictly_with_weights_only(tmp_path):
    state = _random_state(_pytorch_i3d_layout())
    path = tmp_path / "i3d_pretrained_400.pt"
    torch.save(state, path)
    detector = load_i3d(path)
    assert detector.weights == str(path) and not detector.torchscript
    loaded = detector.network.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state.items())


def test_i3d_file_with_wrong_keys_names_the_file(tmp_path):
    state = _random_state(_pytorch_i3d_layout())
    state["module.extra"] = state.pop("Mixed_4b.b0.conv3d.weight")
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"rgb_imagenet\.pt is not a pytorch-i3d InceptionI3d"):
        load_i3d(path)


@pytest.mark.parametrize("kernel", [1, 2, 3, 7])
@pytest.mark.parametrize("stride", [1, 2])
def test_same_padding_gives_tensorflow_output_size(kernel, stride):
    for size in range(1, 40):
        front, back = same_padding(size, kernel, stride)
        assert back - front in (0, 1)
        assert (size + front + back - kernel) // stride + 1 == math.ceil(size / stride)


def test_i3d_rejects_clips_it_cannot_embed():
    network = I3D()
    with pytest.raises(ValueError, match="at least 9 frames of 224x224"):
        network(torch.zeros(1, 3, 8, 224, 224))
    with pytest.raises(ValueError, match="at least 9 frames of 224x224"):
        network(torch.zeros(1, 3, 9, 112, 112))


def _clips(seed, n=2, frames=10, height=32, width=40):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, frames, height, width, generator=generator) * 2 - 1


def test_fvd_with_an_untrained_i3d_is_zero_for_identical_sets_and_says_it_is_no_metric():
    torch.manual_seed(0)
    detector = I3DDetector(_he_init(I3D()), weights=None)
    videos, others = _clips(1), _clips(12)
    features = i3d_features(videos, detector, num_frames=9)
    assert features.shape == (2, 400)
    # A different set is measurably far, so the zero below is not the network's indifference.
    assert frechet_distance(features, i3d_features(others, detector, num_frames=9)) > 0.1
    result = fvd(videos, videos.clone(), detector, num_frames=9, batch_size=2)
    # Each set is embedded separately, so a zero also shows the embedding is deterministic.
    assert abs(result.value) < 1e-5
    assert result.num_samples == (2, 2)
    assert result.frames == "first 9 frames of each clip"
    assert not result.trained and "not a metric" in str(result)
    record = result.as_dict()
    assert record["untrained"] and "not a metric" in record["metric"]
    json.dumps(record)


# --- FVD through a TorchScript detector: the StyleGAN-V calling convention --------------------------


class _ProbeDetector(torch.nn.Module):
    """Stands in for i3d_torchscript.pt: 400-d features that expose what the detector was given.

    Features 0..2: per-channel pixel means; 3..5: frames, height, width; the rest zero. It fails unless
    called as the references call it on preprocessed clips.
    """

    def forward(
        self, x: torch.Tensor, rescale: bool = True, resize: bool = True, return_features: bool = False
    ) -> torch.Tensor:
        assert not rescale and not resize and return_features
        batch = x.shape[0]
        means = x.mean(dim=(2, 3, 4))
        sizes = torch.tensor([float(x.shape[2]), float(x.shape[3]), float(x.shape[4])]).expand(batch, 3)
        return torch.cat([means, sizes, torch.zeros(batch, 394)], dim=1)


@pytest.fixture(scope="module")
def probe_detector(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(_ProbeDetector()), str(path))
    return load_i3d(path)


def test_torchscript_detector_is_recognised_and_called_on_224_clips(probe_detector):
    assert probe_detector.torchscript and probe_detector.weights.endswith("i3d_torchscript.pt")
    features = i3d_features(_clips(2, n=3, frames=20, height=48, width=64), probe_detector)
    assert features.shape == (3, 400) and features.dtype == torch.float64
    assert torch.equal(features[:, 3:6], torch.tensor([[16.0, 224.0, 224.0]] * 3, dtype=torch.float64))
    everything = i3d_features(_clips(2, n=3, frames=20), probe_detector, num_frames=None)
    assert torch.equal(everything[:, 3], torch.full((3,), 20.0, dtype=torch.float64))


@pytest.mark.parametrize(("preset", "expected"), [("styleganv", 3 * 2.0**2), ("videogpt", 3 * 1.0**2)])
def test_black_vs_white_fvd_follows_the_preset_range(probe_detector, preset, expected):
    # Black clips sit at the bottom of the preset's range and white at the top, on all three channels.
    black, white = torch.full((4, 3, 16, 24, 24), -1.0), torch.full((4, 3, 16, 24, 24), 1.0)
    assert fvd(black, white, probe_detector, preset=preset).value == pytest.approx(expected, abs=1e-6)
    black8, white8 = torch.zeros(4, 3, 16, 24, 24, dtype=torch.uint8), torch.full((4, 3, 16, 24, 24), 255)
    result = fvd(black8, white8.to(torch.uint8), probe_detector, preset=preset, batch_size=3)
    assert result.value == pytest.approx(expected, abs=1e-6)
    assert result.trained and preset in result.convention


def test_fvd_takes_an_iterable_of_batches(probe_detector):
    videos = _clips(3, n=5, frames=16)
    whole = i3d_features(videos, probe_detector)
    streamed = i3d_features(iter([videos[:2], videos[2:]]), probe_detector, batch_size=1)
    assert torch.allclose(whole, streamed)


def test_preprocess_resizes_the_shorter_side_then_crops_the_centre():
    videos = _clips(4, n=1, frames=9, height=32, width=48)
    unit = (videos + 1) / 2
    resized = F.interpolate(unit[0], size=(224, 336), mode="bilinear", align_corners=False)
    expected = (resized[:, :, :, 56:280] - 0.5) * 2
    styleganv = preprocess_clips(videos, "styleganv", num_frames=9)
    assert styleganv.shape == (1, 3, 9, 224, 224)
    assert torch.allclose(styleganv[0], expected, atol=1e-6)
    assert torch.allclose(preprocess_clips(videos, "videogpt", num_frames=9), styleganv / 2, atol=1e-6)
    as_uint8 = ((videos + 1) * 127.5).round().to(torch.uint8)
    assert torch.allclose(preprocess_clips(as_uint8, num_frames=9), styleganv, atol=2 / 255)


def test_fvd_input_errors_are_named(probe_detector):
    with pytest.raises(ValueError, match="first 16 frames, but the clips have only 12"):
        fvd(_clips(5, frames=12), _clips(6, frames=12), probe_detector)
    with pytest.raises(ValueError, match=r"permute \(N, F, C, H, W\)"):
        fvd(_clips(5).transpose(1, 2), _clips(6), probe_detector)
    with pytest.raises(ValueError, match=r"must be in \[-1, 1\]"):
        fvd(_clips(5) * 100, _clips(6), probe_detector)
    with pytest.raises(ValueError, match="unknown FVD preset"):
        fvd(_clips(5, frames=16), _clips(6, frames=16), probe_detector, preset="tf")


# --- FID: torch-fidelity's inception-v3-compat ------------------------------------------------------


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    torch.manual_seed(0)
    extractor = untrained_inception_v3()
    _he_init(extractor.network)
    path = tmp_path_factory.mktemp("weights") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(extractor.network.state_dict(), path)
    return extractor, path


def test_inception_features_are_2048_d_per_frame_and_deterministic(inception):
    extractor, _ = inception
    videos = _clips(7, n=2, frames=2, height=32, width=32)
    features = inception_features(videos, extractor)
    assert features.shape == (4, 2048) and features.dtype == torch.float64
    assert (features[0] - features[1]).abs().mean() > 1e-3  # frames are told apart
    assert torch.equal(inception_features(iter([videos[:1], videos[1:]]), extractor, batch_size=1), features)


@pytest.mark.slow  # scipy's sqrtm of a 2048 x 2048 matrix takes about a minute on 2 cores
def test_fid_with_an_untrained_inception_is_zero_for_identical_sets(inception):
    extractor, _ = inception
    videos = _clips(7, n=2, frames=3, height=32, width=32)
    result = fid(videos, videos.clone(), extractor, batch_size=1)
    assert abs(result.value) < 1e-4
    assert result.num_samples == (6, 6) and not result.trained and "not a metric" in str(result)


def test_inception_file_loads_safely_and_matches_torch_fidelity(inception):
    extractor, path = inception
    loaded = load_inception(path)
    assert loaded.weights == str(path)
    # torch-fidelity's own constructor on the same file (its weights_only=False load of a file we wrote).
    reference = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
    )
    frames = (torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(8)) * 255).to(torch.uint8)
    (expected,) = reference(frames)
    assert torch.allclose(loaded.embed(frames), expected, atol=1e-5)
    assert torch.allclose(extractor.embed(frames), expected, atol=1e-5)


# --- CLIP score: open_clip ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return tiny_clip_scorer(tmp_path_factory.mktemp("open_clip_config"))


def _independent_cosines(scorer, clip, caption):
    """100 x cosine of each frame of one clip (3, F, H, W) in [-1, 1] with one caption."""
    frames = ((clip.transpose(0, 1) + 1) * 127.5).round().to(torch.uint8)
    from PIL import Image

    images = torch.stack([scorer.preprocess(Image.fromarray(f.permute(1, 2, 0).numpy())) for f in frames])
    with torch.no_grad():
        image = scorer.model.encode_image(images)
        text = scorer.model.encode_text(scorer.tokenizer([caption]))
    return 100 * torch.cosine_similarity(image, text, dim=-1).double()


def test_clip_score_pairs_each_caption_with_its_clip(tiny_clip):
    videos = _clips(9, n=2, frames=3, height=40, width=48)
    captions = ["a red circle moving left", "a blue square moving up"]
    per_frame = clip_frame_scores(videos, captions, tiny_clip, batch_size=1)
    for clip, caption, scores in zip(videos, captions, per_frame):
        assert torch.allclose(scores, _independent_cosines(tiny_clip, clip, caption), atol=1e-4)
    result = clip_score(videos, captions, tiny_clip)
    assert result.value == pytest.approx(float(torch.stack(per_frame).mean()), abs=1e-6)
    assert len(result.per_sample) == 2 and all(-100 <= s <= 100 for s in result.per_sample)
    assert not result.trained and "no clamp" in result.convention
    assert clip_score(videos, captions, tiny_clip).value == result.value


def test_clip_weights_file_loads_into_the_named_model(tiny_clip, tmp_path):
    path = tmp_path / "tiny_clip.bin"
    torch.save(tiny_clip.model.state_dict(), path)
    loaded = load_clip(TINY_CLIP, path)
    videos, captions = _clips(10, n=1, frames=2), ["a green triangle"]
    assert loaded.weights == str(path)
    expected = clip_frame_scores(videos, captions, tiny_clip)[0]
    assert torch.allclose(clip_frame_scores(videos, captions, loaded)[0], expected, atol=1e-5)


def test_clip_caption_count_must_match(tiny_clip):
    with pytest.raises(ValueError, match="2 clips but 3 captions"):
        clip_score(_clips(11, frames=1), ["a", "b", "c"], tiny_clip)


# --- Missing weights: one error naming the file, where it is published, and the config key -----------


@pytest.mark.parametrize(
    ("network", "filename", "where", "key"),
    [
        ("i3d", "i3d_torchscript.pt", "dropbox.com", "eval.weights.i3d"),
        (
            "inception",
            "weights-inception-2015-12-05-6726825d.pth",
            "github.com/toshas",
            "eval.weights.inception",
        ),
        ("clip", "open_clip_pytorch_model.bin", "huggingface.co/laion", "eval.weights.clip"),
    ],
)
def test_missing_weights_name_file_url_and_config_key(tmp_path, network, filename, where, key):
    with pytest.raises(MissingWeightsError) as raised:
        resolve_weights(network, weights_dir=tmp_path)
    message = str(raised.value)
    assert filename in message and where in message and key in message and str(tmp_path) in message


def test_missing_weights_through_each_loader(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    with pytest.raises(MissingWeightsError, match=f"{WEIGHTS_DIR_ENV} is not set"):
        load_i3d()
    with pytest.raises(MissingWeightsError, match=r"eval\.weights\.inception names no file"):
        load_inception(tmp_path / "nowhere.pth")
    with pytest.raises(MissingWeightsError, match=r"open_clip_pytorch_model\.bin"):
        load_clip(weights_dir=tmp_path)
    with pytest.raises(MissingWeightsError, match="ViT-B-32 has no default weights file"):
        load_clip("ViT-B-32")


def test_weights_directory_accepts_the_other_i3d_files(tmp_path, monkeypatch):
    (tmp_path / "rgb_imagenet.pt").write_bytes(b"")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    assert resolve_weights("i3d") == tmp_path / "rgb_imagenet.pt"
    (tmp_path / "i3d_torchscript.pt").write_bytes(b"")
    assert resolve_weights("i3d") == tmp_path / "i3d_torchscript.pt"


# --- The published test vector (common_metrics_on_video_quality, StyleGAN-V detector) ----------------

_TORCHSCRIPT = Path(os.environ.get(WEIGHTS_DIR_ENV, "/nonexistent")) / "i3d_torchscript.pt"


@pytest.mark.skipif(
    not _TORCHSCRIPT.is_file(),
    reason=f"needs ${WEIGHTS_DIR_ENV}/i3d_torchscript.pt (StyleGAN-V's I3D), which is not present",
)
def test_fvd_reference_vector_all_black_vs_all_white():
    # 8 all-zero vs 8 all-one [8, 30, 3, 64, 64] videos in [0, 1]: -1 and +1 in this project's range.
    black, white = torch.full((8, 3, 30, 64, 64), -1.0), torch.full((8, 3, 30, 64, 64), 1.0)
    result = fvd(black, white, load_i3d(_TORCHSCRIPT), num_frames=None, covariance="unbiased", batch_size=4)
    assert result.value == pytest.approx(151.2565, rel=1e-3)
