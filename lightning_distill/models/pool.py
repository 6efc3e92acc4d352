"""The cross-model pool (ADL §3.2, Table 1): the base models that share one motion module, each with
its share of the batch, and how they are spread over processes.

In one process every member is resident and each step draws its member by share. With several
processes each rank hosts its assigned member(s) as the paper pins base models to GPUs (8 GPUs:
2 x SD1.5, RealisticVision, epiCRealism, 2 x ToonYou, IMP, Counterfeit), so per-process memory does
not grow with the pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from lightning_distill.models.base_model import BaseModelSpec


@dataclass
class Pool:
    """`members` train the motion module; `held_out` are only ever evaluated (generalisation to unseen
    base models, ADL Table 2)."""

    members: dict[str, BaseModelSpec]
    held_out: dict[str, BaseModelSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.members = dict(self.members)
        self.held_out = dict(self.held_out or {})
        if not self.members:
            raise ValueError(
                "The pool has no members: add one with +base_model@pool.members.NAME=CONFIG "
                "(conf/base_model/ lists the configs)."
            )
        # The key under pool.members names the member, so one config can join twice with other paths
        # (+base_model@pool.members.mine=realistic_vision_v51 pool.members.mine.path=...).
        self.members = {key: replace(spec, name=key) for key, spec in self.members.items()}
        self.held_out = {key: replace(spec, name=key) for key, spec in self.held_out.items()}
        both = sorted(set(self.members) & set(self.held_out))
        if both:
            raise ValueError(
                f"base model(s) {', '.join(both)} are both pool members and held out: remove them from one, "
                f"e.g. ~pool.held_out.{both[0]}"
            )

    @property
    def names(self) -> list[str]:
        return list(self.members)

    def shares(self) -> dict[str, float]:
        """Each member's fraction of the global batch (sums to 1)."""
        total = sum(spec.share for spec in self.members.values())
        return {name: spec.share / total for name, spec in self.members.items()}

    def draw(self, rng: np.random.Generator, names: list[str] | None = None) -> str:
        """Draw the member for one step, by share, among `names` (default: every member)."""
        names = names or self.names
        weights = np.array([self.members[n].share for n in names], dtype=np.float64)
        return names[int(rng.choice(len(names), p=weights / weights.sum()))]

    def assign_ranks(self, world_size: int, ranks_per_node: int | None = None) -> list[list[str]]:
        """Members hosted by each rank.

        With at least as many ranks as members, each member gets a number of ranks in proportion to its
        share (largest remainder, at least one each), contiguous, as the paper's table pins them; with
        `ranks_per_node`, that pattern is laid out per node and repeated on every node (the paper's 8
        machines of 8 GPUs). With fewer ranks than members, members are dealt round-robin and each rank
        draws among its own by share.
        """
        if world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        if ranks_per_node and world_size % ranks_per_node == 0 and ranks_per_node < world_size:
            return self.assign_ranks(ranks_per_node) * (world_size // ranks_per_node)
        names = self.names
        if world_size < len(names):
            return [names[rank::world_size] for rank in range(world_size)]
        quota = {n: share * world_size for n, share in self.shares().items()}
        counts = {n: max(1, int(quota[n])) for n in names}
        while sum(counts.values()) < world_size:
            counts[max(names, key=lambda n: quota[n] - counts[n])] += 1
        while sum(counts.values()) > world_size:
            counts[max(names, key=lambda n: counts[n] - quota[n])] -= 1
        return [[name] for name in names for _ in range(counts[name])]


def pool_from_config(members: Mapping, held_out: Mapping | None = None) -> Pool:
    """Build a Pool from already-instantiated specs (what Hydra's recursive instantiate hands over)."""
    return Pool(members=dict(members), held_out=dict(held_out or {}))
