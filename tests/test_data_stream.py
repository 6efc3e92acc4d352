"""Streaming clips from shards: batches, tags, modes, rank/worker splits, URL kinds, the Hydra configs."""

import shutil
import tarfile
from pathlib import Path

import hydra
import lightning
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from lightning_distill.data.datamodule import VideoDataModule, clip_stats, iterate_once
from lightning_distill.data.format import make_meta
from lightning_distill.data.shards import expand_shards
from lightning_distill.data.stream import ClipStream
from lightning_distill.data.synthetic import moving_gradient, write_synthetic_shards
from lightning_distill.data.video import ClipSpec, decode_clip, encode_mp4
from lightning_distill.data.writer import ShardWriter

CONF_DATA = Path(__file__).resolve().parents[1] / "conf" / "data"
CLIPS, SHARD_SIZE = 12, 3  # four shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """Four shards of three 12-frame 40x48 clips each, at 8 fps; even clips carry base_model/style tags."""
    out = tmp_path_factory.mktemp("shards")
    with ShardWriter(out, shard_size=SHARD_SIZE) as writer:
        for index in range(CLIPS):
            tags = (
                {"base_model": "toy_flat", "style": "flat", "labels": {"index": index}}
                if index % 2 == 0
                else {}
            )
            meta = make_meta(f"clip number {index}", "synthetic", 8, 12, 48, 40, **tags)
            writer.write(f"clip{index:03d}", meta, encode_mp4(moving_gradient(12, 40, 48, seed=index), 8))
    return out


def _pattern(folder: Path) -> str:
    return str(folder / "clips-{000000..000003}.tar")


@pytest.mark.parametrize("num_workers", [0, 2])
def test_iterate_once_gives_every_clip_with_its_caption_and_tags(shards, num_workers):
    batches = list(iterate_once(_pattern(shards), frames=8, size=32, batch_size=5, num_workers=num_workers))
    keys = [key for batch in batches for key in batch["key"]]
    assert sorted(keys) == [f"clip{index:03d}" for index in range(CLIPS)]
    for batch in batches:
        video = batch["video"]
        assert video.dtype == torch.float32 and video.shape[1:] == (3, 8, 32, 32)
        assert video.min() >= -1.0 and video.max() <= 1.0 and video.std() > 0.2
        assert batch["skipped"] == {}
        for position, key in enumerate(batch["key"]):
            index = int(key[4:])
            assert batch["caption"][position] == f"clip number {index}"
            assert batch["base_model"][position] == ("toy_flat" if index % 2 == 0 else "")
            assert batch["style"][position] == ("flat" if index % 2 == 0 else "")
            assert batch["labels"][position] == ({"index": index} if index % 2 == 0 else {})
            assert batch["shard"][position].endswith(f"clips-{index // SHARD_SIZE:06d}.tar")


def test_iterate_once_matches_a_direct_decode(shards):
    """The pipeline's tensor is the decoded clip, channels first, mapped by x / 127.5 - 1."""
    batch = next(iterate_once(_pattern(shards), frames=8, size=40, batch_size=1))
    with tarfile.open(shards / "clips-000000.tar") as tar:
        data = tar.extractfile("clip000.mp4").read()
    expected = decode_clip(data, ClipSpec(frames=8, size=40))
    as_tensor = torch.from_numpy(expected).permute(3, 0, 1, 2).float() / 127.5 - 1
    torch.testing.assert_close(batch["video"][0], as_tensor)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_datamodule_batches_in_training_mode(shards, num_workers):
    module = VideoDataModule(
        str(shards / "*.tar"),
        frames=8,
        size=32,
        random_start=True,
        crop="random",
        hflip=True,
        batch_size=4,
        num_workers=num_workers,
        shuffle_buffer=6,
        batches_per_epoch=5,
    )
    module.setup("fit")
    loader = module.train_dataloader()
    assert len(loader) == 5
    for _epoch in range(2):
        batches = list(loader)
        assert len(batches) == 5
        for batch in batches:
            assert batch["video"].shape == (4, 3, 8, 32, 32)
            assert len(batch["caption"]) == len(batch["key"]) == 4
            assert all(caption.startswith("clip number ") for caption in batch["caption"])


def _resampled_keys(urls, rank, world_size=2, seed=0, epoch=0, num_workers=0, batches=4):
    stream = ClipStream(
        urls,
        ClipSpec(frames=4, size=16, random_start=True),
        batch_size=2,
        resampled=True,
        batches_per_epoch=batches,
        shuffle_buffer=4,
        seed=seed,
        rank=rank,
        world_size=world_size,
        epoch=epoch,
    )
    loader = DataLoader(stream, batch_size=None, num_workers=num_workers)
    return [tuple(batch["key"]) for batch in loader]


def test_resampled_ranks_get_equal_batches_and_differ_but_reproduce(shards):
    urls = expand_shards(_pattern(shards))
    # Seven batches over two workers: 4 + 3, still seven per rank.
    rank0 = _resampled_keys(urls, rank=0, num_workers=2, batches=7)
    rank1 = _resampled_keys(urls, rank=1, num_workers=2, batches=7)
    assert len(rank0) == len(rank1) == 7
    assert rank0 != rank1
    assert _resampled_keys(urls, rank=0, num_workers=2, batches=7) == rank0
    assert _resampled_keys(urls, rank=0, epoch=1) != _resampled_keys(urls, rank=0, epoch=0)
    assert _resampled_keys(urls, rank=0, seed=1) != _resampled_keys(urls, rank=0, seed=0)


def test_one_pass_splits_shards_over_ranks_and_workers_without_duplicates(shards):
    keys = []
    for rank in range(2):
        for batch in iterate_once(
            _pattern(shards), 4, 16, batch_size=2, num_workers=2, rank=rank, world_size=2
        ):
            keys.extend(batch["key"])
    assert sorted(keys) == [f"clip{index:03d}" for index in range(CLIPS)]


def test_resampled_stream_of_only_broken_samples_fails_with_a_message(tmp_path):
    with ShardWriter(tmp_path, prefix="bad") as writer:
        writer.write("k0", make_meta("a clip", "test", 8, 8, 32, 32), b"not an mp4")
    stream = ClipStream(
        [str(tmp_path / "bad-000000.tar")],
        ClipSpec(frames=4, size=16),
        2,
        resampled=True,
        batches_per_epoch=1,
    )
    with pytest.raises(RuntimeError, match="no usable clip"):
        next(iter(stream))


def test_shard_urls_pipe_and_fsspec(shards):
    local = clip_stats(_pattern(shards), 4, 16)
    assert local == {"clips": CLIPS, "skipped": {}}
    piped = clip_stats(
        f"pipe:cat {shards / 'clips-000000.tar'}::pipe:cat {shards / 'clips-000001.tar'}", 4, 16
    )
    assert piped == {"clips": 2 * SHARD_SIZE, "skipped": {}}

    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    for path in sorted(shards.glob("*.tar")):
        memory.pipe(f"/ld-test/{path.name}", path.read_bytes())
    try:
        assert clip_stats("memory://ld-test/*.tar", 4, 16) == {"clips": CLIPS, "skipped": {}}
    finally:
        memory.rm("/ld-test", recursive=True)


def test_missing_shards_fail_with_the_names(tmp_path):
    with pytest.raises(ValueError, match="missing file"):
        expand_shards(str(tmp_path / "clips-{000000..000002}.tar"))
    with pytest.raises(ValueError, match="matches no shard"):
        expand_shards(str(tmp_path / "*.tar"))


def test_contradictory_datamodule_settings_are_rejected():
    with pytest.raises(ValueError, match=r"target_fps=8.*frame_stride=2"):
        VideoDataModule("x.tar", target_fps=8, frame_stride=2)
    with pytest.raises(ValueError, match="batches_per_epoch"):
        VideoDataModule("x.tar", resampled=True, batches_per_epoch=None)


@pytest.mark.parametrize("name, frames, size", [("toy", 8, 32), ("webvid", 16, 512)])
def test_data_configs_instantiate_and_stream(tmp_path, name, frames, size):
    """Each conf/data file builds the datamodule; the toy one streams rendered-size clips from its folder."""
    config = OmegaConf.load(CONF_DATA / f"{name}.yaml")
    config = OmegaConf.merge({"paths": {"data": str(tmp_path)}, "seed": 0, "data": config})
    module = hydra.utils.instantiate(config.data, num_workers=0)
    assert isinstance(module, VideoDataModule)
    assert (module.hparams.frames, module.hparams.size) == (frames, size)
    if name != "toy":
        return
    write_synthetic_shards(
        tmp_path / "toy" / "flat", clips=4, frames=8, height=32, width=32, fps=8, shard_size=2
    )
    shutil.copytree(tmp_path / "toy" / "flat", tmp_path / "toy" / "pastel")  # held out: must not be read
    module.setup("fit")
    assert len(module.train_urls) == 2 and all("/flat/" in url for url in module.train_urls)
    batch = next(iter(module.train_dataloader()))
    assert batch["video"].shape == (16, 3, 8, 32, 32)
    assert set(batch["style"]) == {"synthetic"}
    assert np.isfinite(batch["video"].numpy()).all()


class _CountingModule(lightning.LightningModule):
    """Records the keys of every training batch; one parameter so that an optimiser has work."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.keys: list[list[str]] = []

    def training_step(self, batch, batch_index):
        assert batch["video"].shape == (2, 3, 4, 16, 16)
        self.keys.append(list(batch["key"]))
        return (self.weight - batch["video"].mean()) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_trainer_runs_the_set_epoch_length_with_fresh_draws_each_epoch(shards, num_workers):
    module = VideoDataModule(
        str(shards / "*.tar"), frames=4, size=16, batch_size=2, num_workers=num_workers, batches_per_epoch=3
    )
    model = _CountingModule()
    trainer = lightning.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=module)
    assert len(model.keys) == 6
    assert model.keys[:3] != model.keys[3:]  # epoch 1 is seeded apart from epoch 0
