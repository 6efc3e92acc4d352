"""`python -m lightning_distill.data stats|write` as a user runs them: broken shards, WebVid CSVs."""

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from lightning_distill.data.__main__ import main as data_main
from lightning_distill.data.format import make_meta
from lightning_distill.data.once import clip_stats
from lightning_distill.data.shards import expand_shards
from lightning_distill.data.skips import add_counts
from lightning_distill.data.stream import ClipStream
from lightning_distill.data.synthetic import moving_gradient
from lightning_distill.data.video import ClipSpec, encode_mp4
from lightning_distill.data.webvid import write_shards

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lightning_distill.data", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def _meta(caption="a moving gradient", frames=12) -> bytes:
    return json.dumps(make_meta(caption, "test", 8, frames, 32, 32)).encode()


def _write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, payload in members:
            _add(tar, name, payload)


EXPECTED_BROKEN = {
    "clips": 5,
    "skipped": {
        "corrupt_tar": 1,
        "malformed_json": 1,
        "missing_caption": 1,
        "missing_video": 1,
        "too_short": 1,
        "undecodable_video": 1,
    },
}


@pytest.fixture
def broken_shards(tmp_path) -> str:
    """Three shards: one member broken each way, then a shard cut short, then a healthy one."""
    good = encode_mp4(moving_gradient(12, 32, 32, seed=0), 8)
    short = encode_mp4(moving_gradient(4, 32, 32, seed=1), 8)
    _write_tar(
        tmp_path / "broken-000000.tar",
        [
            ("good0.json", _meta()),
            ("good0.mp4", good),
            ("garbled.json", _meta()),
            ("garbled.mp4", good[: len(good) // 2]),  # truncated mp4: its index is gone
            ("nocaption.json", json.dumps({"source": "test", "fps": 8}).encode()),
            ("nocaption.mp4", good),
            ("badjson.json", b'{"caption": "unterminated'),
            ("badjson.mp4", good),
            ("novideo.json", _meta()),
            ("short.json", _meta(frames=4)),
            ("short.mp4", short),
            ("good1.json", _meta()),
            ("good1.mp4", good),
        ],
    )
    # The second shard is cut inside its third sample: two clips survive, the rest of it is skipped.
    _write_tar(
        tmp_path / "broken-000001.tar",
        [
            (f"{key}.{ext}", payload)
            for key in ("a", "b", "c")
            for ext, payload in (("json", _meta()), ("mp4", good))
        ],
    )
    whole = (tmp_path / "broken-000001.tar").read_bytes()
    cut = whole.index(b"c.mp4") + 512 + len(good) // 3
    (tmp_path / "broken-000001.tar").write_bytes(whole[:cut])
    # And a third, healthy shard after it: reading must continue.
    _write_tar(tmp_path / "broken-000002.tar", [("z.json", _meta()), ("z.mp4", good)])
    return str(tmp_path / "broken-{000000..000002}.tar")


def test_stats_counts_each_kind_of_broken_member(broken_shards):
    result = _run("stats", "--shards", broken_shards, "--frames", "8", "--size", "16")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == EXPECTED_BROKEN
    # Each skip is logged once, naming its reason, shard and key.
    for reason, shard, key in [
        ("undecodable_video", "broken-000000.tar", "garbled"),
        ("missing_caption", "broken-000000.tar", "nocaption"),
        ("malformed_json", "broken-000000.tar", "badjson"),
        ("missing_video", "broken-000000.tar", "novideo"),
        ("too_short", "broken-000000.tar", "short"),
        ("corrupt_tar", "broken-000001.tar", "c"),
    ]:
        lines = [line for line in result.stderr.splitlines() if f"skipped {reason}:" in line]
        assert len(lines) == 1 and shard in lines[0] and f"key {key}" in lines[0], result.stderr


def test_skip_counts_survive_dataloader_workers(broken_shards):
    """Counts made inside worker processes reach the caller through the batches."""
    assert clip_stats(broken_shards, 8, 16, batch_size=2, num_workers=2) == EXPECTED_BROKEN
    stream = ClipStream(
        expand_shards(broken_shards), ClipSpec(frames=8, size=16), 2, resampled=True, batches_per_epoch=6
    )
    skipped = {}
    for batch in DataLoader(stream, batch_size=None, num_workers=2):
        add_counts(skipped, batch["skipped"])
    # Twelve clips drawn (seeded) from shards where 5 of 7, or a tail, fail: skips must show.
    assert sum(skipped.values()) > 0 and set(skipped) <= set(EXPECTED_BROKEN["skipped"])


def test_stats_names_missing_shards(tmp_path, capsys):
    code = data_main(
        ["stats", "--shards", str(tmp_path / "none-{000000..000001}.tar"), "--frames", "8", "--size", "16"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "missing file" in err and "none-000000.tar" in err


def _videos(folder: Path, ids: list[str], frames=10) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number, video_id in enumerate(ids):
        (folder / f"{video_id}.mp4").write_bytes(encode_mp4(moving_gradient(frames, 24, 32, seed=number), 25))


def test_write_from_webvid_csv_then_stream(tmp_path):
    videos = tmp_path / "videos"
    _videos(videos / "page_a", ["1001", "1002"])
    _videos(videos / "page_b", ["1003"])
    (videos / "1004.mp4").write_bytes(b"this is no video")
    (tmp_path / "results.csv").write_text(
        "videoid,contentUrl,duration,page_dir,name\n"
        '1001,https://example.invalid/1001.mp4,PT00H00M10S,page_a,"A dog runs, then stops"\n'
        "1002,https://example.invalid/1002.mp4,PT00H00M12S,page_a,Waves on a beach\n"
        "1003,https://example.invalid/1003.mp4,PT00H00M09S,page_b,Timelapse of clouds\n"
        "1004,https://example.invalid/1004.mp4,PT00H00M09S,page_b,Broken file\n"
        "1005,https://example.invalid/1005.mp4,PT00H00M09S,page_b,Never downloaded\n"
        "1006,https://example.invalid/1006.mp4,PT00H00M09S,page_b,\n"
    )
    _videos(videos / "page_b", ["1006"])
    out = tmp_path / "shards"
    result = _run(
        "write",
        "--videos",
        str(videos),
        "--captions",
        str(tmp_path / "results.csv"),
        "--out",
        str(out),
        "--shard-size",
        "2",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["written"] == 3 and summary["shards"] == ["clips-000000.tar", "clips-000001.tar"]
    assert summary["skipped"] == {"missing_caption": 1, "missing_video": 1, "undecodable_video": 1}

    with tarfile.open(out / "clips-000000.tar") as tar:
        assert tar.getnames() == ["1001.json", "1001.mp4", "1002.json", "1002.mp4"]
        meta = json.loads(tar.extractfile("1001.json").read())
        assert tar.extractfile("1001.mp4").read() == (videos / "page_a" / "1001.mp4").read_bytes()
    assert meta["caption"] == "A dog runs, then stops" and meta["source"] == "webvid"
    assert (meta["fps"], meta["frames"], meta["width"], meta["height"]) == (25.0, 10, 32, 24)
    assert meta["page_dir"] == "page_a" and meta["url"].endswith("1001.mp4")

    result = _run("stats", "--shards", str(out / summary["pattern"]), "--frames", "8", "--size", "16")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"clips": 3, "skipped": {}}


def test_write_from_plain_csv_reencodes_other_containers(tmp_path):
    videos = tmp_path / "videos"
    _videos(videos, ["clip.a"])
    frames = moving_gradient(6, 24, 32, seed=5)
    import av  # write one webm to check the re-encode path

    with av.open(str(videos / "b.webm"), "w") as container:
        stream = container.add_stream(
            "libvpx-vp9" if "libvpx-vp9" in av.codecs_available else "mpeg4", rate=10
        )
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    (tmp_path / "captions.csv").write_text("video_id,caption\nclip.a,first clip\nb,second clip\n")
    summary = write_shards(videos, tmp_path / "captions.csv", tmp_path / "out", source="mine")
    assert summary["written"] == 2 and summary["skipped"] == {}
    with tarfile.open(tmp_path / "out" / "clips-000000.tar") as tar:
        assert tar.getnames() == ["clip_a.json", "clip_a.mp4", "b.json", "b.mp4"]
        meta = json.loads(tar.extractfile("b.json").read())
        mp4 = tar.extractfile("b.mp4").read()
    assert mp4[4:8] == b"ftyp" and meta["frames"] == 6 and meta["source"] == "mine"
    assert np.isclose(meta["fps"], 10.0)


def test_write_names_missing_csv_columns(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "bad.csv").write_text("id,text\n1,hello\n")
    with pytest.raises(
        ValueError, match=r"WebVid CSV lacks \['videoid'.*plain CSV lacks \['video_id', 'caption'\]"
    ):
        write_shards(tmp_path / "videos", tmp_path / "bad.csv", tmp_path / "out")
