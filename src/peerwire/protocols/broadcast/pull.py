"""Pull broadcast state (sans-IO): ids being fetched, and bodies kept to serve fetches.

A node that gets a message announces only its id (IHAVE) to its neighbours.
A neighbour that lacks it asks the announcer for the body (IWANT) and
remembers every other announcer of the same id. Only one IWANT per id is
outstanding, so each node receives each body exactly once; if the body does
not come within ``fetch_timeout`` (the announcer crashed or is congested), the
next announcer is asked. Announcements can arrive many times; bodies cannot.

Deadlines are ``now + fetch_timeout`` with a constant timeout and a clock that
never goes back, so they are created in order: a FIFO of deadlines replaces a
heap, and stale entries (fetches already done or re-armed) are skipped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .seen import TimedCache

if TYPE_CHECKING:
    from ...identity.peer_id import PeerId


@dataclass(slots=True)
class Fetch:
    """One id being fetched."""

    asked: list[PeerId]
    """Peers we sent an IWANT to (the last is the current one)."""
    deadline: float
    hops: int
    """Hops of the announcer's copy (the body will have travelled ``hops + 1``)."""
    hop_limit: int
    fallbacks: deque[PeerId] = field(default_factory=deque)
    """Other announcers, in the order they announced."""
    generation: int = 0


@dataclass(slots=True)
class Body:
    """A body kept to answer IWANTs."""

    post_raw: bytes
    hops: int
    hop_limit: int


class PullState:
    """Fetch table + body cache of one node."""

    def __init__(
        self,
        *,
        fetch_timeout: float,
        max_fetches: int,
        max_announcers: int,
        body_cache_size: int,
        body_cache_ttl: float,
    ) -> None:
        self.fetch_timeout = fetch_timeout
        self.max_fetches = max_fetches
        self.max_announcers = max_announcers
        self.fetches: dict[bytes, Fetch] = {}
        self._deadlines: deque[tuple[float, bytes, int]] = deque()
        self.bodies: TimedCache[bytes, Body] = TimedCache(
            max_entries=body_cache_size, ttl=body_cache_ttl
        )

    def announced(
        self, msg_id: bytes, peer: PeerId, hops: int, hop_limit: int, now: float
    ) -> bool | None:
        """Record an IHAVE for an id we lack. True: send an IWANT to ``peer`` now;
        False: already being fetched (``peer`` kept as a fallback); None: table full."""
        fetch = self.fetches.get(msg_id)
        if fetch is not None:
            if (
                peer not in fetch.asked
                and peer not in fetch.fallbacks
                and len(fetch.fallbacks) < self.max_announcers
            ):
                fetch.fallbacks.append(peer)
            return False
        if len(self.fetches) >= self.max_fetches:
            return None
        fetch = Fetch([peer], now + self.fetch_timeout, hops, hop_limit)
        self.fetches[msg_id] = fetch
        self._deadlines.append((fetch.deadline, msg_id, fetch.generation))
        return True

    def expects(self, msg_id: bytes, peer: PeerId) -> Fetch | None:
        """The fetch a BODY from ``peer`` answers, if we asked ``peer`` for ``msg_id``."""
        fetch = self.fetches.get(msg_id)
        if fetch is None or peer not in fetch.asked:
            return None
        return fetch

    def done(self, msg_id: bytes) -> Fetch | None:
        return self.fetches.pop(msg_id, None)

    def retry(self, msg_id: bytes, now: float) -> PeerId | None:
        """Ask the next announcer of ``msg_id`` (now); None if there is none (fetch dropped)."""
        fetch = self.fetches.get(msg_id)
        if fetch is None:
            return None
        if not fetch.fallbacks:
            del self.fetches[msg_id]
            return None
        peer = fetch.fallbacks.popleft()
        fetch.asked.append(peer)
        fetch.generation += 1
        fetch.deadline = now + self.fetch_timeout
        self._deadlines.append((fetch.deadline, msg_id, fetch.generation))
        return peer

    def due(self, now: float) -> list[bytes]:
        """Ids whose current IWANT has timed out."""
        out: list[bytes] = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, msg_id, generation = deadlines.popleft()
            fetch = self.fetches.get(msg_id)
            if fetch is not None and fetch.generation == generation:
                out.append(msg_id)
        return out

    def next_deadline(self) -> float | None:
        deadlines = self._deadlines
        while deadlines:
            _, msg_id, generation = deadlines[0]
            fetch = self.fetches.get(msg_id)
            if fetch is not None and fetch.generation == generation:
                return deadlines[0][0]
            deadlines.popleft()
        return None
