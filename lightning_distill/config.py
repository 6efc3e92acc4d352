"""The Hydra config tree: where it lives, how tests and sweeps compose it, and the one clear error for a
misspelt experiment, group option or key.

Hydra's own messages for a wrong key ("Key 'max_stepz' is not in struct") do not say what would have
been valid. `check_overrides` composes the config the way the command line would and, when that fails,
explains each bad override with the valid choices and the nearest match.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
CONFIG_NAME = "config"
PACKAGE_DIR = Path(__file__).resolve().parent


def asset_path(relative: str) -> str:
    """Absolute path of a file or folder shipped inside the package (`${ld_asset:toy/teacher}`)."""
    return str(PACKAGE_DIR / relative)


def eval_prompts(name: str) -> str:
    """A prompts file the evaluation protocols ship (`${eval_prompts:webvid_100.txt}`)."""
    return str(PACKAGE_DIR.parent / "eval" / "prompts" / name)


if not OmegaConf.has_resolver("ld_asset"):
    OmegaConf.register_new_resolver("ld_asset", asset_path)
if not OmegaConf.has_resolver("eval_prompts"):
    OmegaConf.register_new_resolver("eval_prompts", eval_prompts)


class ConfigError(ValueError):
    """A command line or config that cannot be composed; the message says what would be valid."""


def compose(overrides: Sequence[str] = (), config_name: str = CONFIG_NAME) -> DictConfig:
    """Compose the project's config as `python -m lightning_distill OVERRIDES` would (for tests, sweeps).

    Hydra-only interpolations (``${hydra:...}``) are not used in the tree, so the result resolves
    outside a Hydra app.
    """
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def group_options(group: str) -> list[str]:
    """The option names of a config group (`experiment` -> ['1step', '2step', ...])."""
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def config_groups() -> list[str]:
    return sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and not p.name.startswith("."))


def _nearest(word: str, choices: Sequence[str], prefix: str = "") -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{prefix}{match[0]}'?" if match else ""


def _explain_group(override, text: str) -> str | None:
    group = override.key_or_group
    options = group_options(group)
    if override.is_delete():
        return None
    value = override.value()
    names = value if isinstance(value, list) else [value]
    for name in names:
        if not isinstance(name, str) or name in options:
            continue
        return (
            f"Unknown {group} '{name}' in '{text}'. Valid choices for {group}: {', '.join(options)}."
            f"{_nearest(name, options)}"
        )
    return None


def _explain_key(override, text: str, base: DictConfig) -> str | None:
    if override.is_add() or override.is_force_add():
        return None
    path = override.key_or_group.split(".")
    node = base
    for depth, part in enumerate(path):
        is_last = depth == len(path) - 1
        if not isinstance(node, DictConfig):
            return None  # indexing into a list or a value: let Hydra's own message stand
        if part not in node:
            where = ".".join(path[:depth]) or "the top level"
            keys = sorted(str(k) for k in node)
            hint = _nearest(part, keys, prefix=".".join(path[:depth]) + "." if depth else "")
            add = (
                f" To add a new key, write '+{text.lstrip('~')}'."
                if not override.is_delete() and is_last
                else ""
            )
            groups = config_groups() if depth == 0 else []
            group_hint = ""
            if part in groups:
                group_hint = (
                    f" '{part}' is a config group that is not in the defaults: select it with '+{part}=NAME'."
                )
            return (
                f"Unknown config key '{'.'.join(path[: depth + 1])}' in '{text}'. Valid keys under {where}: "
                f"{', '.join(keys)}.{hint}{group_hint}{add}"
            )
        node = node[part]
    return None


def check_world(cfg: DictConfig) -> DictConfig:
    """Raise one ConfigError when the experiment is sized for another world than the one composed (an
    experiment sets `requires_world`; each conf/world/ option sets `world`)."""
    needed, world = cfg.get("requires_world"), cfg.get("world")
    if needed and world and needed != world:
        raise ConfigError(
            f"+experiment={cfg.get('experiment')} is sized for world={needed}, not world={world}: its budgets "
            f"would replace the {world} world's recipe. Start from the experiment it extends and set recipe.* "
            f"and latents.* for your hardware."
        )
    return cfg


def check_overrides(overrides: Sequence[str], config_name: str = CONFIG_NAME) -> DictConfig:
    """Compose with `overrides`; on failure raise one ConfigError that names the bad override and the
    valid choices (or the world the experiment needs). Returns the composed config on success."""
    try:
        composed = compose(overrides, config_name)
    except Exception as error:  # Hydra raises several types; every one is explained the same way
        original = error
    else:
        return check_world(composed)
    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(list(overrides))
    except Exception as error:
        raise ConfigError(f"Cannot parse the command line: {error}") from None
    groups = set(config_groups())
    group_overrides = [
        text for text, o in zip(overrides, parsed, strict=True) if o.key_or_group in groups or o.package
    ]
    for text, override in zip(overrides, parsed, strict=True):
        if override.key_or_group in groups:
            message = _explain_group(override, text)
            if message is None and override.type.name == "CHANGE" and override.package is None:
                try:
                    compose([text], config_name)
                except Exception:
                    message = (
                        f"'{text}': {override.key_or_group} is not in the default list; select it with "
                        f"'+{text}'. Valid choices: {', '.join(group_options(override.key_or_group))}."
                    )
            if message:
                raise ConfigError(message) from None
    try:
        base = compose(group_overrides, config_name)
    except Exception:
        base = None
    if base is not None:
        for text, override in zip(overrides, parsed, strict=True):
            if (
                override.key_or_group in groups
                or override.package
                or override.key_or_group.startswith("hydra.")
            ):
                continue
            message = _explain_key(override, text, base)
            if message:
                raise ConfigError(message) from None
    raise ConfigError(str(original).strip()) from None


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=False)
