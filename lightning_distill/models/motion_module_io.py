"""Read and write AnimateDiff motion modules in the two layouts the community loads.

- **original** (guoyww/AnimateDiff ``mm_sd_v15*.ckpt``, ComfyUI-AnimateDiff-Evolved, the Lightning
  ``*_comfyui.safetensors``): one ``.ckpt`` (read only through ``torch.load(weights_only=True)``) or
  ``.safetensors`` file, optionally wrapped in ``{"state_dict": ...}``.
- **diffusers** (``MotionAdapter``): a folder with ``config.json`` + ``diffusion_pytorch_model.safetensors``
  (``MotionAdapter.from_pretrained(dir)``), or one ``.safetensors`` file (the Lightning
  ``*_diffusers.safetensors``, ``MotionAdapter().load_state_dict(load_file(path))``).

In memory a motion module is a ``MotionModuleCheckpoint``: the diffusers-layout state dict (exactly the keys
of ``MotionAdapter(**config).state_dict()``, position tables included), its config and its AnimateDiff
version. Conversion only renames (``motion_module_keys``), so tensors keep their dtype and bits.

The config comes, in rising priority, from the tensor shapes (``motion_module_config``: heads and norm
groups are a guess there), a single file's safetensors metadata (this module writes it), a folder's
``config.json``, and the caller's ``config``; the result must fit the tensors exactly.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from lightning_distill.models.motion_module_config import (
    adapter_kwargs,
    adapter_mismatch,
    detect_version,
    fill_position_tables,
    infer_adapter_config,
)
from lightning_distill.models.motion_module_keys import (
    EXAMPLE_DIFFUSERS_KEY,
    EXAMPLE_ORIGINAL_KEY,
    diffusers_to_original,
    is_motion_module_key,
    is_original_key,
    original_to_diffusers,
)

LAYOUTS = ("diffusers", "original")
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
LEGACY_WEIGHTS_NAME = "diffusion_pytorch_model.bin"  # save_pretrained(safe_serialization=False)
METADATA_CONFIG_KEY = "motion_adapter_config"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
WHERE_PUBLISHED = (
    "AnimateDiff motion modules are published at huggingface.co/guoyww/animatediff (original layout) and "
    "huggingface.co/ByteDance/AnimateDiff-Lightning (both layouts)"
)


class MotionModuleFormatError(ValueError):
    """A path that cannot be read or written as an AnimateDiff motion module; the message names the path,
    what was expected and what to do."""


@dataclass
class MotionModuleCheckpoint:
    """A motion module in diffusers layout. ``state_dict``: MotionAdapter keys -> tensors (any dtype).
    ``config``: ``MotionAdapter(**config)`` kwargs. ``version``: "v1", "v2" or "v3". ``layout``: the layout
    it was read in. ``config_source``: where the config came from (shapes / metadata / config.json / caller)."""

    state_dict: dict[str, Tensor]
    config: dict
    version: str
    layout: str = "diffusers"
    config_source: str = "shapes"

    def to_motion_adapter(self):
        """A diffusers ``MotionAdapter`` holding these weights (strict load; the file's dtype)."""
        from diffusers import MotionAdapter

        adapter = MotionAdapter(**self.config)
        adapter.to(next(iter(self.state_dict.values())).dtype)
        adapter.load_state_dict(self.state_dict, strict=True)
        return adapter

    def num_parameters(self) -> int:
        return sum(t.numel() for k, t in self.state_dict.items() if not k.endswith("pos_embed.pe"))


# ---- reading ---------------------------------------------------------------------------------------------


def read_motion_module(path: str | os.PathLike, config: dict | None = None) -> MotionModuleCheckpoint:
    """Read a motion module in either layout from a file or a diffusers folder; see the module docstring."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"motion module not found: {path}. Expected an original-layout .ckpt/.safetensors file, or a "
            f"diffusers folder ({CONFIG_NAME} + {WEIGHTS_NAME}) or file. {WHERE_PUBLISHED}."
        )
    folder_config = None
    if path.is_dir():
        folder_config = _read_folder_config(path)
        candidates = [path / WEIGHTS_NAME, path / LEGACY_WEIGHTS_NAME]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise MotionModuleFormatError(
                f"{candidates[0].parent} is a folder without {WEIGHTS_NAME}: a diffusers motion-module folder "
                f"holds {CONFIG_NAME} and {WEIGHTS_NAME} (as MotionAdapter.save_pretrained writes them)"
            )
    tensors, metadata_config = _read_tensors(path)
    given = [("metadata", metadata_config), (CONFIG_NAME, folder_config), ("caller", config)]
    return from_state_dict(tensors, *(c for _, c in given), source=path, sources=[n for n, c in given if c])


def from_state_dict(
    state_dict: dict[str, Tensor], *configs: dict | None, source: str | os.PathLike = "state dict", sources=()
) -> MotionModuleCheckpoint:
    """A checkpoint from an in-memory state dict of either layout (e.g. the ``motion_modules`` entries of a
    trained ``UNetMotionModel``). Later ``configs`` override earlier ones, all override the shapes."""
    layout = _detect_layout(state_dict, source)
    try:
        diffusers_sd = original_to_diffusers(state_dict) if layout == "original" else dict(state_dict)
        config = infer_adapter_config(diffusers_sd)
    except ValueError as err:
        raise MotionModuleFormatError(f"{source}: {err}") from err
    for extra in configs:
        config.update(adapter_kwargs(extra or {}))
    fill_position_tables(diffusers_sd, config)
    mismatch = adapter_mismatch(diffusers_sd, config)
    if mismatch:
        raise MotionModuleFormatError(
            f"{source} does not fit MotionAdapter(**{config}): {mismatch}; fix the config (a folder's "
            "config.json, or pass config=) or the file"
        )
    return MotionModuleCheckpoint(
        diffusers_sd, config, detect_version(config), layout, "+".join(["shapes", *sources])
    )


def from_motion_adapter(adapter) -> MotionModuleCheckpoint:
    """A checkpoint of a diffusers ``MotionAdapter`` in memory (tensors detached, on the CPU)."""
    state_dict = {k: v.detach().cpu() for k, v in adapter.state_dict().items()}
    return from_state_dict(
        state_dict, dict(adapter.config), source=type(adapter).__name__, sources=["caller"]
    )


def _read_folder_config(folder: Path) -> dict:
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise MotionModuleFormatError(
            f"{folder} is a folder without {CONFIG_NAME}: a diffusers motion-module folder holds {CONFIG_NAME} "
            f"and {WEIGHTS_NAME}; for a single weights file pass the file itself"
        )
    try:
        return json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MotionModuleFormatError(
            f"{config_path} is not valid JSON ({err}); rewrite or re-export it"
        ) from err


def _read_tensors(path: Path) -> tuple[dict[str, Tensor], dict | None]:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise MotionModuleFormatError(
                f"cannot read {path}: truncated or not a safetensors file ({err}); download or export it again"
            ) from err
        try:
            config = json.loads(metadata[METADATA_CONFIG_KEY]) if METADATA_CONFIG_KEY in metadata else None
        except json.JSONDecodeError as err:
            raise MotionModuleFormatError(
                f"{path}: its '{METADATA_CONFIG_KEY}' metadata is not JSON ({err}); export it again"
            ) from err
        return tensors, config
    if suffix in PICKLE_SUFFIXES:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            reason = _unpickler_reason(err)
            if "global" in reason:
                raise MotionModuleFormatError(
                    f"refused to unpickle {path}: it holds objects other than tensors ({reason}), which "
                    "torch.load(weights_only=True) will not run; convert it to .safetensors where you trust it"
                ) from err
            raise MotionModuleFormatError(
                f"cannot read {path}: corrupt or not a PyTorch checkpoint ({reason}); download it again"
            ) from err
        except (RuntimeError, EOFError, OSError) as err:
            raise MotionModuleFormatError(
                f"cannot read {path}: truncated or not a PyTorch checkpoint ({err}); download it again"
            ) from err
        return _unwrap(loaded, path), None
    raise MotionModuleFormatError(
        f"{path}: unknown file type {suffix!r}; a motion module is a .safetensors or {'/'.join(PICKLE_SUFFIXES)} "
        "file, or a diffusers folder"
    )


def _unpickler_reason(err: Exception) -> str:
    """The one informative line of torch's long weights_only error (what the unpickler stopped at)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("WeightsUnpickler error:"):
            rest = line[len("WeightsUnpickler error:") :].strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else "")
    return lines[0] if lines else type(err).__name__


def _unwrap(loaded, path: Path) -> dict[str, Tensor]:
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise MotionModuleFormatError(
            f"{path} is not a state dict of tensors (found {type(loaded).__name__}); expected a motion module, "
            f"optionally under 'state_dict', with keys like {EXAMPLE_ORIGINAL_KEY!r}"
        )
    return loaded


def _detect_layout(state_dict: dict[str, Tensor], source) -> str:
    keys = list(state_dict)
    foreign = [k for k in keys if not is_motion_module_key(k)]
    if not keys or len(foreign) == len(keys):
        raise MotionModuleFormatError(
            f"{source} is not an AnimateDiff motion module: expected keys like {EXAMPLE_ORIGINAL_KEY!r} "
            f"(original layout) or {EXAMPLE_DIFFUSERS_KEY!r} (diffusers layout), found {keys[:3]}"
        )
    if foreign:
        raise MotionModuleFormatError(
            f"{source} holds {len(foreign)} keys that belong to no motion module, e.g. {foreign[:3]}: pass the "
            "motion module alone (for a UNetMotionModel, its '*.motion_modules.*' entries)"
        )
    original = [k for k in keys if is_original_key(k)]
    module_keys = [k for k in keys if not k.startswith("conv_in.")]
    if original and len(original) != len(module_keys):
        raise MotionModuleFormatError(
            f"{source} mixes the original and the diffusers layout (e.g. {original[0]!r} and "
            f"{next(k for k in module_keys if not is_original_key(k))!r}); re-export it from one source"
        )
    return "original" if original else "diffusers"


# ---- writing ---------------------------------------------------------------------------------------------


def write_motion_module(checkpoint: MotionModuleCheckpoint, path: str | os.PathLike, layout: str) -> Path:
    """Write ``checkpoint`` in ``layout``; returns the path written.

    original: ``path`` must end in ``.safetensors`` (what ComfyUI reads). diffusers: a ``.safetensors`` path
    writes the single file; any other path is a folder that gets ``config.json`` + ``WEIGHTS_NAME``. Single
    files carry the config in their metadata, so that reading them back needs no guessing.
    """
    path = Path(path)
    if layout not in LAYOUTS:
        raise MotionModuleFormatError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
    metadata = {"format": "pt", METADATA_CONFIG_KEY: json.dumps(checkpoint.config)}
    if layout == "original":
        if path.suffix.lower() != ".safetensors":
            raise MotionModuleFormatError(
                f"{path}: the original layout is written as one .safetensors file; give a path ending in "
                ".safetensors"
            )
        _save_atomic(diffusers_to_original(checkpoint.state_dict), path, metadata)
        return path
    if path.suffix.lower() == ".safetensors":
        _save_atomic(checkpoint.state_dict, path, metadata)
        return path
    if path.exists() and not path.is_dir():
        raise MotionModuleFormatError(
            f"{path} exists and is not a folder; give a folder or a .safetensors path"
        )
    path.mkdir(parents=True, exist_ok=True)
    from diffusers import __version__ as diffusers_version

    config = {"_class_name": "MotionAdapter", "_diffusers_version": diffusers_version, **checkpoint.config}
    _write_atomic(path / CONFIG_NAME, lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2) + "\n"))
    _save_atomic(checkpoint.state_dict, path / WEIGHTS_NAME, {"format": "pt"})
    return path


def _save_atomic(tensors: dict[str, Tensor], path: Path, metadata: dict[str, str]) -> None:
    contiguous = {k: v.contiguous() for k, v in tensors.items()}
    _write_atomic(path, lambda tmp: save_file(contiguous, tmp, metadata=metadata))


def _write_atomic(path: Path, write) -> None:
    """Write through a temporary file in the same folder and rename it into place, so that a crash never
    leaves a half-written checkpoint under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
