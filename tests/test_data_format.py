"""The shard format, the writer, and MP4 encode/decode (lightning_distill.data.format, writer, video)."""

import io
import json
import tarfile

import numpy as np
import pytest

from lightning_distill.data.format import FORMAT, make_meta, supported_format
from lightning_distill.data.synthetic import moving_gradient
from lightning_distill.data.video import ClipSpec, TooShort, UndecodableVideo, decode_clip, encode_mp4
from lightning_distill.data.writer import ShardWriter


def _meta(caption="a red circle moving left", **tags):
    return make_meta(caption, "test", 8, 8, 32, 32, **tags)


def test_make_meta_fields_and_tags():
    meta = make_meta(
        "a clip", "toy", 8, 8, 32, 32, base_model="toy_flat", style="flat", labels={"shape": "circle"}, seed=3
    )
    assert meta == {
        "format": FORMAT,
        "caption": "a clip",
        "source": "toy",
        "fps": 8.0,
        "frames": 8,
        "width": 32,
        "height": 32,
        "base_model": "toy_flat",
        "style": "flat",
        "labels": {"shape": "circle"},
        "seed": 3,
    }
    assert "style" not in _meta() and "base_model" not in _meta()


@pytest.mark.parametrize(
    "args, message",
    [
        (("", "toy", 8, 8, 32, 32), "caption"),
        (("c", "toy", 0, 8, 32, 32), "fps"),
        (("c", "toy", 8, 0, 32, 32), "frames"),
        (("c", "toy", 8, 8, 32.5, 32), "width"),
    ],
)
def test_make_meta_rejects_bad_values(args, message):
    with pytest.raises(ValueError, match=message):
        make_meta(*args)


def test_make_meta_rejects_extra_that_shadows_a_field():
    with pytest.raises(ValueError, match="clash"):
        make_meta("c", "toy", 8, 8, 32, 32, format="other")


def test_supported_format_accepts_older_and_foreign_json_only():
    assert supported_format({"caption": "x"})  # a plain WebDataset json without our tag
    assert supported_format({"format": "lightning_distill.shard/1"})
    assert not supported_format({"format": "lightning_distill.shard/2"})
    assert not supported_format({"format": "somebody.else/1"})


def test_writer_rolls_shards_and_writes_manifest(tmp_path):
    mp4 = encode_mp4(moving_gradient(8, 32, 32, seed=0), 8)
    latents = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    with ShardWriter(tmp_path, prefix="toy", shard_size=2) as writer:
        for index in range(5):
            writer.write(f"s{index}", _meta(style="flat"), mp4, latents=latents)
    manifest = writer.close()
    assert manifest == {
        "format": FORMAT,
        "shards": [
            {"name": "toy-000000.tar", "samples": 2},
            {"name": "toy-000001.tar", "samples": 2},
            {"name": "toy-000002.tar", "samples": 1},
        ],
        "samples": 5,
        "pattern": "toy-{000000..000002}.tar",
    }
    assert json.loads((tmp_path / "toy.manifest.json").read_text()) == manifest
    # Only finished files: no temporaries left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "toy-000000.tar",
        "toy-000001.tar",
        "toy-000002.tar",
        "toy.manifest.json",
    ]
    with tarfile.open(tmp_path / "toy-000000.tar") as tar:
        assert tar.getnames() == [
            "s0.json",
            "s0.mp4",
            "s0.latents.npy",
            "s1.json",
            "s1.mp4",
            "s1.latents.npy",
        ]
        assert json.loads(tar.extractfile("s0.json").read())["style"] == "flat"
        assert tar.extractfile("s0.mp4").read() == mp4
        stored = np.load(io.BytesIO(tar.extractfile("s1.latents.npy").read()), allow_pickle=False)
    np.testing.assert_array_equal(stored, latents)


def test_writer_is_deterministic(tmp_path):
    mp4 = encode_mp4(moving_gradient(8, 32, 32, seed=1), 8)
    for name in ("a", "b"):
        with ShardWriter(tmp_path / name) as writer:
            writer.write("k0", _meta(), mp4)
    assert (tmp_path / "a" / "clips-000000.tar").read_bytes() == (
        tmp_path / "b" / "clips-000000.tar"
    ).read_bytes()


def test_writer_discards_the_open_shard_on_error(tmp_path):
    with pytest.raises(RuntimeError), ShardWriter(tmp_path) as writer:
        writer.write("k0", _meta(), b"bytes")
        raise RuntimeError("the caller failed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "key, meta, arrays, message",
    [
        ("a.b", _meta(), {}, "not valid"),
        ("k", {"caption": "x"}, {}, "lacks"),
        ("k", _meta(), {"bad": np.array([object()])}, "object"),
    ],
)
def test_writer_rejects_bad_samples(tmp_path, key, meta, arrays, message):
    with ShardWriter(tmp_path) as writer, pytest.raises(ValueError, match=message):
        writer.write(key, meta, None, **arrays)


def test_encode_keeps_toy_colours():
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    frames[:, 8:24, 8:24] = (255, 0, 0)  # a red square on black, as the toy world draws
    frames[:, :4, :, :] = (255, 255, 0)  # a yellow band
    decoded = decode_clip(encode_mp4(frames, 8), ClipSpec(frames=8, size=32))
    assert decoded.shape == (8, 32, 32, 3) and decoded.dtype == np.uint8
    # Away from edges (yuv420p halves chroma resolution) colours are within a few levels.
    assert np.abs(decoded[:, 12:20, 12:20].astype(int) - (255, 0, 0)).max() <= 6
    assert np.abs(decoded[:, :2, 4:28].astype(int) - (255, 255, 0)).max() <= 6
    assert np.abs(decoded[:, 28:, 28:].astype(int)).max() <= 6


def test_encode_rejects_odd_sizes_and_wrong_dtype():
    with pytest.raises(ValueError, match="even"):
        encode_mp4(np.zeros((2, 31, 32, 3), np.uint8), 8)
    with pytest.raises(ValueError, match="uint8"):
        encode_mp4(np.zeros((2, 32, 32, 3), np.float32), 8)


def _numbered_video(frames: int, fps: float, keyframe_every: int | None = None) -> bytes:
    """Frame i is flat grey at level 10 + 5 i, so a decoded frame tells its own index."""
    levels = (10 + 5 * np.arange(frames)).astype(np.uint8)
    return encode_mp4(
        np.broadcast_to(levels[:, None, None, None], (frames, 16, 24, 3)).copy(),
        fps,
        keyframe_every=keyframe_every,
    )


def _indices(clip: np.ndarray) -> list[int]:
    return [round((level - 10) / 5) for level in clip[:, 8, 8, 0].astype(float)]


def test_decode_first_frames_with_stride_and_target_fps():
    data = _numbered_video(40, 24)
    assert _indices(decode_clip(data, ClipSpec(frames=5, size=16))) == [0, 1, 2, 3, 4]
    assert _indices(decode_clip(data, ClipSpec(frames=5, size=16, frame_stride=2))) == [0, 2, 4, 6, 8]
    # 24 fps file, 8 fps wanted: stride 3.
    assert _indices(decode_clip(data, ClipSpec(frames=5, size=16, target_fps=8))) == [0, 3, 6, 9, 12]


@pytest.mark.parametrize("keyframe_every", [None, 6])
def test_random_start_is_a_valid_window_and_seeks_exactly(keyframe_every):
    data = _numbered_video(45, 24, keyframe_every=keyframe_every)
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(12):
        indices = _indices(
            decode_clip(data, ClipSpec(frames=4, size=16, target_fps=8, random_start=True), rng)
        )
        start = indices[0]
        assert indices == [start, start + 3, start + 6, start + 9]
        assert 0 <= start <= 45 - 10
        starts.add(start)
    assert len(starts) > 3


def test_resize_shorter_side_then_crop():
    frames = np.zeros((4, 32, 64, 3), np.uint8)
    frames[:, :, :16] = 255  # white left quarter: cropped away by the centre crop
    frames[:, :, 28:36] = (0, 255, 0)  # green centre stripe: survives
    clip = decode_clip(encode_mp4(frames, 8), ClipSpec(frames=4, size=16))
    assert clip.shape == (4, 16, 16, 3)
    assert clip[:, :, :2].max() <= 8  # the left edge of the centre crop is black, not white
    assert clip[:, 8, 8, 1].min() > 200 and clip[:, 8, 8, 0].max() < 40
    random_crops = {
        decode_clip(
            encode_mp4(frames, 8), ClipSpec(frames=4, size=16, crop="random"), np.random.default_rng(s)
        )[0, 0, :, 0].tobytes()
        for s in range(6)
    }
    assert len(random_crops) > 1


def test_too_short_and_undecodable():
    data = _numbered_video(8, 8)
    with pytest.raises(TooShort):
        decode_clip(data, ClipSpec(frames=9, size=16))
    with pytest.raises(TooShort):
        decode_clip(data, ClipSpec(frames=5, size=16, frame_stride=2))
    for broken in (data[: len(data) // 2], b"\x00" * 100, b"not a video at all" * 50, b""):
        with pytest.raises(UndecodableVideo):
            decode_clip(broken, ClipSpec(frames=4, size=16))
