"""Skip accounting: every sample the pipeline drops is counted by reason and logged with shard and key.

Counts travel inside the batches (``batch["skipped"]``: the counts since the previous batch of the same
worker), because DataLoader workers are separate processes whose counters the caller never sees;
summing the batches' counts gives the run's totals. Each (reason, shard, key) is logged once per
process, so a resampled run that meets the same broken sample every epoch does not flood the log.
"""

from __future__ import annotations

import logging
from collections import Counter

logger = logging.getLogger("lightning_distill.data")

# Why a sample (or the rest of a shard) was skipped. The first six are the format's failure modes.
REASONS = {
    "corrupt_tar": "the shard's tar stream is truncated or damaged; the rest of that shard is skipped",
    "malformed_json": "KEY.json is not a UTF-8 JSON object, or a field has the wrong type",
    "missing_caption": "no caption: neither KEY.json's 'caption' nor KEY.txt holds non-empty text",
    "missing_video": "the sample has no KEY.mp4 member",
    "undecodable_video": "KEY.mp4 does not open or decode (garbage, truncated, no video stream)",
    "too_short": "the video has fewer frames than the clip spans at its stride",
    "unreadable_shard": "the shard cannot be opened (missing remote object, failed pipe command)",
    "unsupported_format": "KEY.json declares a shard format newer than this reader",
}

# Enough distinct (reason, shard, key) entries for any plausible broken dataset; past it, warnings stop
# but counting continues, so memory stays bounded on a pathologically broken stream.
_MAX_LOGGED = 100_000
_logged: set[tuple[str, str, str]] = set()


class SkipCounter:
    """Counts skips by reason; ``take()`` hands over the counts gathered since the previous ``take()``."""

    def __init__(self) -> None:
        self.total: Counter[str] = Counter()
        self._pending: Counter[str] = Counter()

    def skip(self, reason: str, shard: str, key: str, detail: str = "") -> None:
        """Count one skip and log it (once per process for each reason, shard and key)."""
        if reason not in REASONS:
            raise ValueError(f"unknown skip reason {reason!r}; known: {sorted(REASONS)}")
        self.total[reason] += 1
        self._pending[reason] += 1
        entry = (reason, shard, key)
        if entry not in _logged and len(_logged) < _MAX_LOGGED:
            _logged.add(entry)
            logger.warning(
                "skipped %s: shard %s key %s%s", reason, shard, key, f" ({detail})" if detail else ""
            )

    def take(self) -> dict[str, int]:
        """The counts since the previous call, as a plain dict, and reset them."""
        pending = dict(self._pending)
        self._pending.clear()
        return pending

    @property
    def pending(self) -> bool:
        return bool(self._pending)


def add_counts(total: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    """Add ``counts`` into ``total`` in place and return it (summing batches' ``skipped`` dicts)."""
    for reason, count in counts.items():
        total[reason] = total.get(reason, 0) + int(count)
    return total
