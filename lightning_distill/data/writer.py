"""ShardWriter: samples in, tar shards and a manifest out, in the format ``format.py`` documents.

Each shard is written to a temporary file in the output folder and renamed into place when it is full,
so a reader (or a crashed writer) never sees a half-written ``.tar`` under the final name. Members carry
a fixed mtime, owner and mode, so the same samples always give byte-identical shards.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from lightning_distill.atomic import write_bytes_atomic

from .format import FORMAT, REQUIRED_FIELDS, check_key

_MEMBER_MODE = 0o444


class ShardWriter:
    """Write samples into ``<out_dir>/<prefix>-000000.tar``, ``-000001.tar``, ... and a manifest.

    Use as a context manager; ``close`` (called on exit) finishes the last shard and writes
    ``<out_dir>/<prefix>.manifest.json``. On an exception inside the ``with`` block the shard being
    written is discarded and no manifest is written.

    Args:
        out_dir: folder for the shards (created if missing).
        prefix: shard name prefix.
        shard_size: samples per shard (the last shard may hold fewer).
    """

    def __init__(self, out_dir: str | os.PathLike, prefix: str = "clips", shard_size: int = 256):
        if shard_size < 1:
            raise ValueError(f"ShardWriter: shard_size must be >= 1, got {shard_size}")
        if not prefix or "/" in prefix:
            raise ValueError(f"ShardWriter: prefix must be a plain file-name prefix, got {prefix!r}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.shard_size = shard_size
        self.shards: list[dict] = []
        self._tar: tarfile.TarFile | None = None
        self._tmp_path: str | None = None
        self._in_shard = 0
        self._last_key: str | None = None
        self._manifest: dict | None = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._discard()

    def write(self, key: str, meta: dict, mp4: bytes | None = None, **arrays: np.ndarray) -> None:
        """Append one sample.

        Args:
            key: the sample key (no '.' or '/'); consecutive samples must differ.
            meta: the sample's json object, normally from ``format.make_meta``.
            mp4: the clip's MP4 bytes (``video.encode_mp4``), or None for array-only samples.
            **arrays: extra arrays stored as ``KEY.<name>.npy`` (numeric dtypes only, never pickled).
        """
        if self._manifest is not None:
            raise RuntimeError("ShardWriter.write after close(); open a new writer")
        check_key(key)
        if key == self._last_key:
            raise ValueError(f"ShardWriter: key {key!r} repeats the previous sample's key; keys must differ")
        missing = [name for name in REQUIRED_FIELDS if name not in meta]
        if missing:
            raise ValueError(f"ShardWriter: meta for {key!r} lacks {missing}; build it with format.make_meta")
        members = [(f"{key}.json", json.dumps(meta, sort_keys=True, ensure_ascii=False).encode("utf-8"))]
        if mp4 is not None:
            members.append((f"{key}.mp4", bytes(mp4)))
        for name, array in arrays.items():
            members.append((f"{key}.{name}.npy", _npy_bytes(key, name, array)))
        if self._tar is None:
            self._open_shard()
        for name, payload in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(payload), 0, _MEMBER_MODE
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(payload))
        self._last_key = key
        self._in_shard += 1
        if self._in_shard == self.shard_size:
            self._finish_shard()

    def close(self) -> dict:
        """Finish the last shard, write the manifest atomically, and return it (idempotent)."""
        if self._manifest is not None:
            return self._manifest
        if self._tar is not None:
            self._finish_shard()
        names = [shard["name"] for shard in self.shards]
        manifest = {
            "format": FORMAT,
            "shards": list(self.shards),
            "samples": sum(shard["samples"] for shard in self.shards),
            "pattern": _brace_pattern(self.prefix, len(names)),
        }
        write_bytes_atomic(
            self.out_dir / f"{self.prefix}.manifest.json", json.dumps(manifest, indent=1).encode()
        )
        self._manifest = manifest
        return manifest

    def _open_shard(self) -> None:
        handle, self._tmp_path = tempfile.mkstemp(
            prefix=f".{self.prefix}-", suffix=".tar.tmp", dir=self.out_dir
        )
        # Open across many write() calls; _finish_shard or _discard closes it.
        fileobj = os.fdopen(handle, "wb")
        self._tar = tarfile.open(fileobj=fileobj, mode="w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
        self._in_shard = 0

    def _finish_shard(self) -> None:
        name = f"{self.prefix}-{len(self.shards):06d}.tar"
        fileobj = self._tar.fileobj
        self._tar.close()  # writes the end-of-archive blocks; does not close a passed-in fileobj
        fileobj.flush()
        os.fsync(fileobj.fileno())
        fileobj.close()
        os.chmod(self._tmp_path, 0o644)
        os.replace(self._tmp_path, self.out_dir / name)
        self.shards.append({"name": name, "samples": self._in_shard})
        self._tar, self._tmp_path, self._in_shard = None, None, 0

    def _discard(self) -> None:
        if self._tar is not None:
            fileobj = self._tar.fileobj
            self._tar.close()
            fileobj.close()
            os.unlink(self._tmp_path)
            self._tar, self._tmp_path = None, None


def _npy_bytes(key: str, name: str, array: np.ndarray) -> bytes:
    if "." in name or "/" in name:
        raise ValueError(f"ShardWriter: array name {name!r} for {key!r} must not contain '.' or '/'")
    array = np.asarray(array)
    if array.dtype.hasobject:
        raise ValueError(
            f"ShardWriter: array {name!r} for {key!r} has dtype object; only numeric arrays store"
        )
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _brace_pattern(prefix: str, count: int) -> str | None:
    if count == 0:
        return None
    if count == 1:
        return f"{prefix}-000000.tar"
    return f"{prefix}-{{000000..{count - 1:06d}}}.tar"
