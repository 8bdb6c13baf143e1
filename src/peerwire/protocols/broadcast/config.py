"""``BroadcastConfig``: the limits of ``/peerwire/bcast/1.0.0``, with their defaults.

Reached as ``peerwire.Config(broadcast=BroadcastConfig(...))``. Times are
seconds on the event loop's clock (virtual under the simulator), except
``max_age``, which compares wall-clock timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import UsageError


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastConfig:
    """Broadcast settings. All fields keyword-only."""

    hop_limit: int = 32
    """Default hop limit of push and pull broadcasts (1..255): a node that received
    a message over this many links delivers it but does not pass it on. Override
    per message with ``node.broadcast(..., hop_limit=)``."""
    seen_size: int = 65536
    """Message ids remembered for dedup. When full, the oldest id is forgotten early
    (counted in ``BroadcastStats.seen_evicted``)."""
    seen_ttl: float = 300.0
    """Seconds a message id is remembered (nnet: 300 s)."""
    max_age: float = 240.0
    """Refuse messages whose author timestamp is more than this many seconds old or
    in the future: an id forgotten after ``seen_ttl`` must not be accepted again, so
    ``max_age`` must be smaller than ``seen_ttl``; 0 disables the check."""
    fetch_timeout: float = 2.0
    """Pull mode: seconds to wait for a body after asking an announcer (IWANT)
    before asking the next announcer of the same id."""
    max_fetches: int = 4096
    """Pull mode: ids being fetched at once; announcements beyond it are ignored
    (counted) until fetches finish."""
    max_announcers: int = 8
    """Pull mode: announcers remembered per id being fetched (fallbacks)."""
    body_cache_size: int = 4096
    """Pull mode: bodies kept to answer IWANTs (oldest evicted first)."""
    body_cache_ttl: float = 120.0
    """Pull mode: seconds a body is kept to answer IWANTs."""
    queue_size: int = 1024
    """Frames held for one neighbour that cannot take them at once; beyond, frames
    to it are dropped and counted (``BroadcastStats.dropped_congestion``)."""
    max_validations: int = 1024
    """Messages waiting for an async validator at once; beyond, new ones are
    dropped and counted (``BroadcastStats.dropped_validation_limit``)."""
    max_copies: int = 8
    """Largest ``copies=`` a tree broadcast may ask for."""

    def __post_init__(self) -> None:
        if not 1 <= self.hop_limit <= 255:
            raise UsageError("BroadcastConfig.hop_limit must be in 1..255")
        for name in (
            "seen_size",
            "max_fetches",
            "max_announcers",
            "body_cache_size",
            "queue_size",
            "max_validations",
        ):
            if getattr(self, name) < 1:
                raise UsageError(f"BroadcastConfig.{name} must be >= 1")
        if not 1 <= self.max_copies <= 255:
            raise UsageError("BroadcastConfig.max_copies must be in 1..255")
        for name in ("seen_ttl", "fetch_timeout", "body_cache_ttl"):
            if getattr(self, name) <= 0:
                raise UsageError(f"BroadcastConfig.{name} must be > 0")
        if self.max_age < 0 or (self.max_age and self.max_age >= self.seen_ttl):
            raise UsageError(
                "BroadcastConfig.max_age must be >= 0 and smaller than seen_ttl "
                "(an id must be remembered as long as its message is accepted)"
            )
