"""Shard URLs in, raw samples out: pattern expansion, opening any URL, and a tar reader that notices
truncation.

Accepted shard specs (several joined by ``::``, as WebDataset does):
  local paths, brace patterns (``clips-{000000..000009}.tar``), globs (``data/*.tar``),
  ``pipe:COMMAND`` (the command's stdout is the tar; WebDataset refuses it when WDS_SECURE=1),
  and any fsspec URL (``s3://``, ``gs://``, ``http(s)://``, ``file://``, ...; globs expand via fsspec).

Why not WebDataset's own ``tarfile_to_samples``: when a shard is cut short it keeps the half-read last
sample and hands it to the next shard, and a shard cut at a member boundary (or with garbage after one)
ends silently; both would lose data without a count. Here the reader drops the unfinished sample,
reports the shard as corrupt, and checks that an uncompressed tar really ends with its zero block.
"""

from __future__ import annotations

import glob
import os
import tarfile
from collections.abc import Iterator
from urllib.parse import urlparse

from webdataset.gopen import gopen as wds_gopen
from webdataset.shardlists import expand_urls

_GLOB_CHARS = set("*?[")
_BLOCK = tarfile.BLOCKSIZE


class ShardError(Exception):
    """A shard that cannot be read to its end; ``reason`` is its skip-count name."""

    def __init__(self, reason: str, key: str, detail: str):
        super().__init__(detail)
        self.reason, self.key, self.detail = reason, key, detail


def expand_shards(spec: str | list[str]) -> list[str]:
    """The shard URLs a spec names, in order (globs sorted).

    Raises ValueError when the spec names nothing, or names local files that do not exist.
    """
    # A list (also an OmegaConf ListConfig from a yaml list) names several specs; each may hold braces.
    specs = [spec] if isinstance(spec, str) else [str(item) for item in spec]
    parts = [part for item in specs for part in expand_urls(item)]
    urls: list[str] = []
    for part in parts:
        if part.startswith("pipe:") or not (_GLOB_CHARS & set(part)):
            urls.append(part)
        elif _is_remote(part):
            import fsspec

            fs, _, paths = fsspec.get_fs_token_paths(part)
            urls.extend(fs.unstrip_protocol(path) for path in sorted(paths))
        else:
            urls.extend(sorted(glob.glob(_local_path(part))))
    if not urls:
        raise ValueError(f"shard spec {spec!r} matches no shard; check the path or pattern")
    missing = [url for url in urls if _is_local(url) and not os.path.exists(_local_path(url))]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ValueError(f"shard spec {spec!r} names {len(missing)} missing file(s): {shown}")
    return urls


def _is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def _is_local(url: str) -> bool:
    return not url.startswith("pipe:") and not _is_remote(url)


def _local_path(url: str) -> str:
    return urlparse(url).path if url.startswith("file:") else os.path.expanduser(url)


def open_shard(url: str):
    """A binary read stream for one shard URL (local file, ``pipe:``, or fsspec URL)."""
    if url.startswith("pipe:"):
        try:
            return wds_gopen(url, "rb")
        except ValueError as error:
            raise ValueError(
                f"{url}: pipe: URLs are refused while WDS_SECURE=1; unset it to allow them"
            ) from error
    if _is_local(url):
        return open(_local_path(url), "rb")
    import fsspec

    return fsspec.open(url, "rb").open()


class _Tally:
    """A read-through wrapper that remembers the raw bytes near the current position.

    tarfile in stream mode reads ahead by at most one record (10 KiB), so keeping the last 32 KiB is
    enough to look at the block where it stopped and tell a real end-of-archive (a zero block) from a
    stream that just ended.
    """

    _KEEP_BYTES = 32 * 1024

    def __init__(self, raw):
        self.raw, self.position, self._chunks, self._kept = raw, 0, [], 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self._chunks.append((self.position, data))
        self._kept += len(data)
        while self._kept - len(self._chunks[0][1]) >= self._KEEP_BYTES:
            self._kept -= len(self._chunks.pop(0)[1])
        self.position += len(data)
        return data

    def bytes_at(self, offset: int, size: int) -> bytes | None:
        """The raw bytes [offset, offset + size) if still remembered, else None."""
        if not self._chunks:
            return None
        start = self._chunks[0][0]
        joined = b"".join(chunk for _, chunk in self._chunks)
        if offset < start or offset + size > start + len(joined):
            return None
        return joined[offset - start : offset - start + size]


def _split_name(name: str) -> tuple[str, str] | None:
    """(key, extension) of a member name: the key ends at the first dot of the base name."""
    folder, _, base = name.rpartition("/")
    key, dot, extension = base.partition(".")
    if not dot or not key:
        return None
    return (f"{folder}/{key}" if folder else key), extension.lower()


def tar_samples(url: str, stream) -> Iterator[dict]:
    """Samples of one tar stream: dicts {"__key__", "__url__", extension: bytes, ...}.

    Raises ShardError("corrupt_tar", ...) after the last complete sample when the stream is truncated or
    damaged; the sample being read at that point is dropped with it, since it may be incomplete.
    """
    tally = _Tally(stream)
    current: dict | None = None
    last_key = ""
    try:
        archive = tarfile.open(fileobj=tally, mode="r|*")  # noqa: SIM115 (the caller closes the stream)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ShardError("corrupt_tar", "", f"not a tar stream: {error}") from error
    try:
        for member in archive:
            if not member.isreg() or member.name.rpartition("/")[2].startswith("__"):
                continue
            split = _split_name(member.name)
            if split is None:
                continue
            key, extension = split
            payload = archive.extractfile(member).read()
            if current is not None and key != current["__key__"]:
                yield current
                current = None
            last_key = key
            if current is None:
                current = {"__key__": key, "__url__": url}
            if extension in current:
                raise ShardError("corrupt_tar", key, f"member {member.name} appears twice in one sample")
            current[extension] = payload
            archive.members = []  # stream mode keeps every TarInfo otherwise; shards are long
        _check_end(archive, tally, last_key)
    except ShardError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as error:
        raise ShardError("corrupt_tar", last_key, f"{type(error).__name__}: {error}") from error
    if current is not None:
        yield current


def _check_end(archive: tarfile.TarFile, tally: _Tally, last_key: str) -> None:
    """Raise ShardError unless an uncompressed tar stopped at a zero block (the end-of-archive marker)."""
    if getattr(archive.fileobj, "comptype", "tar") != "tar":
        return  # a compressed stream's decompressor reports truncation itself; raw offsets mean nothing
    block = tally.bytes_at(archive.offset, _BLOCK)
    if block is None:
        raise ShardError(
            "corrupt_tar", last_key, f"stream ends at byte {tally.position} without an end marker"
        )
    if block.count(0) != _BLOCK:
        raise ShardError("corrupt_tar", last_key, f"no valid tar header at byte {archive.offset}")
