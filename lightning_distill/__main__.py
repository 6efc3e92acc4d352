"""`python -m lightning_distill +experiment=4step [overrides]`: the Hydra entry point.

The config is checked before Hydra runs, so a misspelt experiment, group option or key stops with one
message listing the valid choices (exit status 2) instead of a stack trace; so does a stage chain that
contradicts itself (stages/chain.py), checked before anything loads.
"""

from __future__ import annotations

import sys

import hydra
from hydra._internal.utils import get_args_parser
from omegaconf import DictConfig

from lightning_distill.config import CONF_DIR, CONFIG_NAME, ConfigError, check_overrides


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=CONFIG_NAME)
def _hydra_main(cfg: DictConfig) -> None:
    from lightning_distill.stages.chain import ChainError
    from lightning_distill.train import train  # heavy imports only once the config is known good

    try:
        train(cfg)
    except ChainError as error:  # a contradictory chain is the user's config, not a crash: no stack trace
        print(f"lightning_distill: {error}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    args, _ = get_args_parser().parse_known_args()
    # Sweeps (-m) compose one config per job with the sweeper's own syntax; Hydra reports those itself.
    if not (args.multirun or args.help or args.hydra_help or args.info or args.shell_completion):
        try:
            check_overrides(args.overrides, args.config_name or CONFIG_NAME)
        except ConfigError as error:
            print(f"lightning_distill: {error}", file=sys.stderr)
            sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
