"""Atomic writes, the project's one implementation: readers (and a run that crashed mid-write) see either
the old file or folder or the complete new one, never a partial one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in `path`'s folder; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_bytes_atomic(path: str | os.PathLike, payload: bytes) -> Path:
    with atomic_output(path) as temporary, open(temporary, "wb") as file:
        file.write(payload)
        file.flush()
        os.fsync(file.fileno())
    return Path(path)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path` (an older folder of
    that name is removed only once the new one is complete), on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield temporary
        if path.exists():
            retired = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, retired / path.name)
            os.replace(temporary, path)
            shutil.rmtree(retired)
        else:
            os.replace(temporary, path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)


def save_pretrained_atomic(model, path: str | os.PathLike) -> Path:
    """`model.save_pretrained(path)` (diffusers, transformers or peft; safetensors) as one atomic folder.

    Kept out of what is written: the folder the model was loaded from, which diffusers records in
    config.json as `_name_or_path` (a student continued from its teacher, a part continued from another,
    would ship this machine's paths), and the model-card template peft writes."""
    with atomic_directory(path) as temporary:
        model.save_pretrained(temporary, safe_serialization=True)
        for stray in temporary.glob("README.md"):
            stray.unlink()
        config_file = temporary / "config.json"
        if config_file.is_file():
            config = json.loads(config_file.read_text())
            if config.pop("_name_or_path", None) is not None:
                # diffusers' own layout: sorted keys, two-space indent, a final newline.
                config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return Path(path)
