"""What one stabilisation round does, sans-IO: a plan over the ring state and ``now``.

Each round (every ``stabilize_interval`` seconds, jittered) the adapter:

1. asks its successor for its successor and predecessor lists (which also
   notifies the successor of us); a closer successor or more distant ones are
   offered to the ring; a successor that fails is dropped and the next one
   asked, so a crashed successor is repaired around within a round;
2. does the same with its predecessor, which grows the predecessor list;
3. looks up up to ``finger_lookups_per_round`` finger starts, sweeping the
   distinct fingers beyond the successor list (see :class:`Stabilizer`);
4. pings neighbours nobody has heard from for ``probe_interval`` seconds;
5. every ``self_check_every`` rounds, has a random connected peer look up our
   own successor (this merges a ring that concurrent joins left "loopy");
6. closes connections it opened to peers that left every list.

This module decides the *what* (which finger next, whom to probe, when a
peer has failed too often, how long to sleep); :mod:`.service` does the I/O.
"""

from __future__ import annotations

import random
from collections.abc import Hashable
from typing import Generic, TypeVar

from .config import ChordConfig
from .ring import KEY_BITS, Ring

P = TypeVar("P", bound=Hashable)


class Stabilizer(Generic[P]):
    """Per-node maintenance bookkeeping: contact times, failure counts, finger sweep."""

    __slots__ = ("_config", "_cursor", "_failures", "_heard", "_rng", "_rounds")

    def __init__(self, config: ChordConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self._heard: dict[P, float] = {}
        """Peer -> when an RPC with it last succeeded (either direction)."""
        self._failures: dict[P, int] = {}
        self._cursor = 0
        """Next finger index the sweep looks at."""
        self._rounds = 0

    def self_check_due(self) -> bool:
        """Counts a round; True on every ``self_check_every``-th one."""
        self._rounds += 1
        every = self._config.self_check_every
        return bool(every) and self._rounds % every == 0

    def pick(self, peers: list[P]) -> P | None:
        """A random one of ``peers`` (from the seeded generator), None if there are none."""
        return peers[self._rng.randrange(len(peers))] if peers else None

    # ------------------------------------------------------------------ timing
    def next_delay(self) -> float:
        """Seconds until the next round: the base interval, jittered."""
        j = self._config.jitter
        return self._config.stabilize_interval * (1.0 + self._rng.uniform(-j, j))

    # ---------------------------------------------------------------- liveness
    def heard_from(self, peer: P, now: float) -> None:
        """An RPC with ``peer`` succeeded (we asked it, or it asked us)."""
        self._heard[peer] = now
        self._failures.pop(peer, None)

    def failed(self, peer: P) -> bool:
        """An RPC to ``peer`` timed out; True once it has failed ``max_failures`` times in a row."""
        count = self._failures.get(peer, 0) + 1
        self._failures[peer] = count
        return count >= self._config.max_failures

    def forget(self, peer: P) -> None:
        """``peer`` left the ring state: drop its bookkeeping (keeps memory bounded)."""
        self._heard.pop(peer, None)
        self._failures.pop(peer, None)

    def probes(self, ring: Ring[P], now: float) -> list[P]:
        """Neighbours to ping this round: silent for ``probe_interval``, longest silent first."""
        horizon = now - self._config.probe_interval
        heard = self._heard
        stale = []
        for peer in ring.neighbours():
            last = heard.get(peer)
            if last is None:
                heard[peer] = now  # just arrived: its first probe is due one interval on
            elif last <= horizon:
                stale.append((last, peer))
        stale.sort(key=lambda item: item[0])
        return [peer for _, peer in stale[: self._config.max_probes_per_round]]

    # ------------------------------------------------------------ finger sweep
    def next_finger(self, ring: Ring[P]) -> int | None:
        """The next finger index to look up, or None when no finger lies past the successors.

        The sweep walks the finger starts upwards from :meth:`Ring.sweep_floor`;
        after each lookup it skips every start the answer already covers (the
        starts up to the node found), so one pass costs about one lookup per
        distinct finger, then it wraps round.
        """
        floor = ring.sweep_floor()
        if floor >= KEY_BITS:
            return None
        index = max(self._cursor, floor)
        if index >= KEY_BITS:
            index = floor
        return index

    def finger_done(self, index: int, found_distance: int | None) -> None:
        """Finger ``index``'s lookup found its first node ``found_distance`` away (None: failed)."""
        if found_distance is not None and found_distance >= 1 << index:
            self._cursor = found_distance.bit_length()
        else:
            self._cursor = index + 1
        if self._cursor >= KEY_BITS:
            self._cursor = 0
