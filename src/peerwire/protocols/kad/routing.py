"""The Kademlia routing table (sans-IO): k-buckets over the 256-bit XOR space.

A peer's position is sha256 of its PeerId bytes (:func:`peerwire.overlay.key_for`).
Bucket ``i`` holds peers whose position shares exactly ``i`` leading bits with
ours; the last bucket holds everyone sharing at least ``len(buckets) - 1``.
The table starts as one bucket and unfolds lazily: when the last bucket (the
one whose range contains our own key) is full, it splits, exactly as in the
Kademlia paper's tree where only the branch holding our ID is ever split.
That keeps many peers near us and ``k`` per distance range farther out.

Eviction follows the paper: a full bucket prefers the peers it has, because
peers that have been up long tend to stay up. :meth:`RoutingTable.add` returns
``PENDING`` with the bucket's least-recently-seen peer; the caller pings it
and reports back with :meth:`RoutingTable.ping_result`: alive, it moves to the
tail and the newcomer is dropped; dead, it is replaced by the newcomer. To
avoid a ping per newcomer, an oldest peer heard from within ``ping_after``
seconds is kept without one (the newcomer is dropped).

``ping_after`` defaults to 15 minutes (:data:`DEFAULT_PING_AFTER`), BitTorrent's
rule for a "good" DHT node (BEP 5): a peer that answered within that window
is presumed alive. A shorter window pings far more than it learns: in a
simulated network where 1,000 nodes joined over 200 s, 30 s made each node
send ~39 liveness pings (most over a fresh connection, since idle
connections had closed) against ~90 lookup requests and cost 26% more CPU,
though no node failed in that run, so no ping found a dead peer. A dead peer
does not need the ping to leave: ``max_failures`` failed requests in a row
remove it.

Refresh: every bucket remembers when a lookup last passed through its range;
:meth:`RoutingTable.buckets_needing_refresh` names the stale ones with a
random lookup key in each. A lookup key is what goes on the wire (its
position is sha256 of it), so random keys are found by hashing random bytes
until each wanted bucket has one; buckets too deep to hit cheaply get our own
id instead, whose lookup covers everything near us anyway.
"""

from __future__ import annotations

import enum
import hashlib
import random
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from ...errors import UsageError
from ...identity.peer_id import PeerId

KEY_BITS = 256
DEFAULT_PING_AFTER = 900.0
"""Seconds since we last heard from a full bucket's oldest peer before a newcomer
makes us ping it (BEP 5's 15 minutes; see the module docstring)."""
REFRESH_KEY_SEARCH = 1 << 16
"""sha256 evaluations spent finding random lookup keys for one refresh round
(~30 ms). Bucket ``i`` needs about ``2**(i+1)``, so buckets up to ~15 deep get
their own key; deeper ones (networks far beyond 10^5 nodes) use the self lookup."""


def position(peer: PeerId) -> int:
    """A peer's position in the key space, as an int (sha256 of its PeerId bytes)."""
    return int.from_bytes(hashlib.sha256(peer.to_bytes()).digest(), "big")


def common_prefix_length(a: int, b: int) -> int:
    """Leading bits two positions share (256 if equal)."""
    return KEY_BITS - (a ^ b).bit_length()


class AddStatus(enum.Enum):
    ADDED = "added"
    """New peer inserted."""
    UPDATED = "updated"
    """Known peer: moved to the tail of its bucket (most recently seen)."""
    PENDING = "pending"
    """Bucket full: ping ``AddResult.ping`` and call ``ping_result``."""
    FULL = "full"
    """Bucket full and its oldest peer was heard from recently (or is being pinged): dropped."""
    SELF = "self"
    """Our own id: never stored."""


@dataclass(frozen=True, slots=True)
class AddResult:
    status: AddStatus
    ping: PeerId | None = None
    """With ``PENDING``: the least-recently-seen peer to ping."""


@dataclass(slots=True)
class _Entry:
    position: int
    last_seen: float
    failures: int = 0


class _Bucket:
    __slots__ = ("last_refreshed", "peers", "pending")

    def __init__(self, last_refreshed: float) -> None:
        # Least recently seen first.
        self.peers: OrderedDict[PeerId, _Entry] = OrderedDict()
        self.last_refreshed = last_refreshed
        # (oldest being pinged, candidate waiting for its slot, candidate position)
        self.pending: tuple[PeerId, PeerId, int] | None = None


@dataclass(frozen=True, slots=True)
class BucketInfo:
    """A snapshot of one bucket, for tests, metrics and the simulator."""

    index: int
    peers: tuple[PeerId, ...]
    last_refreshed: float


class RoutingTable:
    """k-buckets around ``local_id`` (our PeerId bytes). Pure data structure: no I/O, no clock."""

    def __init__(
        self,
        local_id: bytes,
        *,
        k: int = 20,
        bucket_count: int = KEY_BITS,
        ping_after: float = DEFAULT_PING_AFTER,
        max_failures: int = 2,
        refresh_interval: float = 600.0,
        rng: random.Random | None = None,
    ) -> None:
        if k < 1 or not 1 <= bucket_count <= KEY_BITS:
            raise UsageError("k must be >= 1 and bucket_count in 1..256")
        self.local_id = bytes(local_id)
        self.local_key = hashlib.sha256(self.local_id).digest()
        self._local = int.from_bytes(self.local_key, "big")
        self.k = k
        self.bucket_count = bucket_count
        self.ping_after = ping_after
        self.max_failures = max_failures
        self.refresh_interval = refresh_interval
        self.rng = rng if rng is not None else random.Random(0)
        """Source of refresh keys (the caller seeds it; the default is fixed, for tests)."""
        self._buckets: list[_Bucket] = [_Bucket(float("-inf"))]
        self._index: dict[PeerId, int] = {}
        self._positions: dict[PeerId, int] = {}  # every stored peer, for closest()

    # ------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, peer: object) -> bool:
        return peer in self._index

    def peers(self) -> list[PeerId]:
        """Every peer, farthest bucket first, least recently seen first within a bucket."""
        return [peer for bucket in self._buckets for peer in bucket.peers]

    def buckets(self) -> list[BucketInfo]:
        return [
            BucketInfo(i, tuple(b.peers), b.last_refreshed) for i, b in enumerate(self._buckets)
        ]

    def last_seen(self, peer: PeerId) -> float | None:
        index = self._index.get(peer)
        if index is None:
            return None
        return self._buckets[index].peers[peer].last_seen

    def bucket_index(self, key: bytes | int) -> int:
        """Index of the bucket whose range contains position ``key`` (32 bytes or int)."""
        pos = int.from_bytes(key, "big") if isinstance(key, bytes | bytearray) else key
        return min(common_prefix_length(self._local, pos), len(self._buckets) - 1)

    def closest(
        self, key: bytes, count: int | None = None, *, exclude: Iterable[PeerId] = ()
    ) -> list[PeerId]:
        """Up to ``count`` (default k) peers nearest to position ``key``, nearest first.

        Only the buckets that can hold the answer are sorted. With ``c`` the
        bucket of ``key``, distances fall in bands: bucket ``c`` is nearest,
        then every bucket above ``c`` (one band: they all differ from ``key``
        at bit ``c``), then ``c-1``, ``c-2``, ... So whole bands are gathered
        until there are enough, and only those are sorted.
        """
        target = int.from_bytes(key, "big")
        limit = self.k if count is None else count
        # Excluded peers are dropped by distance once sorted (positions are
        # distinct): testing every candidate against a set of PeerIds hashed
        # each one in Python, the costliest part of answering FIND_NODE.
        # An excluded peer counts against the band holding it only: counting
        # it everywhere made a full bucket look one short, so answers about
        # the far half of the space (where the requester often sits) sorted
        # every peer in the table instead of that bucket's k.
        index = self._index
        excluded = [(index[p], self._positions[p] ^ target) for p in exclude if p in index]
        buckets = self._buckets
        c = self.bucket_index(target)
        bands: list[range] = [range(c, c + 1), range(c + 1, len(buckets))]
        bands.extend(range(i, i + 1) for i in range(c - 1, -1, -1))
        ranked: list[tuple[int, PeerId]] = []
        usable = 0
        for band in bands:
            for i in band:
                peers = buckets[i].peers
                ranked += [(entry.position ^ target, peer) for peer, entry in peers.items()]
                usable += len(peers)
            usable -= sum(1 for i, _ in excluded if i in band)
            if usable >= limit:
                break
        ranked.sort()  # positions are distinct, so PeerIds are never compared
        if excluded:
            skip = {distance for _, distance in excluded}
            ranked = [item for item in ranked[: limit + len(skip)] if item[0] not in skip]
        return [peer for _, peer in ranked[:limit]]

    def next_hop(self, key: bytes) -> PeerId | None:
        """The known peer nearest to ``key`` if it is nearer than we are, else None."""
        target = int.from_bytes(key, "big")
        best: PeerId | None = None
        best_distance = self._local ^ target
        for peer, pos in self._positions.items():
            if pos ^ target < best_distance:
                best, best_distance = peer, pos ^ target
        return best

    # ------------------------------------------------------------- updates
    def add(self, peer: PeerId, now: float) -> AddResult:
        """Note that ``peer`` is alive (it answered us, or identified as a kad server)."""
        index = self._index.get(peer)
        if index is not None:
            bucket = self._buckets[index]
            entry = bucket.peers[peer]
            entry.last_seen = now
            entry.failures = 0
            bucket.peers.move_to_end(peer)
            return AddResult(AddStatus.UPDATED)
        pos = position(peer)
        if pos == self._local:
            return AddResult(AddStatus.SELF)
        while True:
            index = self.bucket_index(pos)
            bucket = self._buckets[index]
            if len(bucket.peers) < self.k:
                self._insert(index, peer, pos, now)
                return AddResult(AddStatus.ADDED)
            if index == len(self._buckets) - 1 and len(self._buckets) < self.bucket_count:
                self._split()
                continue
            if bucket.pending is not None:
                return AddResult(AddStatus.FULL)
            oldest, entry = next(iter(bucket.peers.items()))
            if now - entry.last_seen < self.ping_after:
                return AddResult(AddStatus.FULL)
            bucket.pending = (oldest, peer, pos)
            return AddResult(AddStatus.PENDING, oldest)

    def _insert(self, index: int, peer: PeerId, pos: int, now: float) -> None:
        self._buckets[index].peers[peer] = _Entry(pos, now)
        self._index[peer] = index
        self._positions[peer] = pos

    def _split(self) -> None:
        old = self._buckets[-1]
        depth = len(self._buckets) - 1
        new = _Bucket(old.last_refreshed)
        old.pending = None
        self._buckets.append(new)
        for peer in [p for p, e in old.peers.items() if self._cpl(e.position) > depth]:
            new.peers[peer] = old.peers.pop(peer)
            self._index[peer] = depth + 1

    def _cpl(self, pos: int) -> int:
        return common_prefix_length(self._local, pos)

    def ping_result(self, peer: PeerId, alive: bool, now: float) -> PeerId | None:
        """Report the ping asked for by ``PENDING``; returns the newcomer if it got the slot."""
        for bucket in self._buckets:
            if bucket.pending is not None and bucket.pending[0] == peer:
                _, candidate, pos = bucket.pending
                bucket.pending = None
                break
        else:
            return None
        if alive:
            if peer in bucket.peers:
                bucket.peers[peer].last_seen = now
                bucket.peers[peer].failures = 0
                bucket.peers.move_to_end(peer)
                return None
        else:
            self.remove(peer)
        index = self.bucket_index(pos)  # the table may have split meanwhile
        if candidate in self._index or len(self._buckets[index].peers) >= self.k:
            return None
        self._insert(index, candidate, pos, now)
        return candidate

    def failed(self, peer: PeerId) -> bool:
        """Count a failed RPC to ``peer``; True if that removed it (``max_failures`` in a row)."""
        index = self._index.get(peer)
        if index is None:
            return False
        entry = self._buckets[index].peers[peer]
        entry.failures += 1
        if entry.failures >= self.max_failures:
            self.remove(peer)
            return True
        return False

    def remove(self, peer: PeerId) -> bool:
        index = self._index.pop(peer, None)
        if index is None:
            return False
        del self._buckets[index].peers[peer]
        del self._positions[peer]
        return True

    # ------------------------------------------------------------- refresh
    def mark_refreshed(self, key: bytes, now: float) -> None:
        """A lookup for position ``key`` ran: its bucket counts as fresh."""
        self._buckets[self.bucket_index(key)].last_refreshed = now

    def buckets_needing_refresh(
        self,
        now: float,
        *,
        interval: float | None = None,
        non_empty_only: bool = False,
    ) -> list[bytes]:
        """Lookup keys (wire keys: their sha256 falls in the bucket) for stale buckets.

        A bucket is stale when no lookup passed through it for ``interval``
        seconds (default ``refresh_interval``; 0: every bucket). The last bucket, and any
        bucket the bounded random search could not hit, map to our own id:
        a self lookup. The result has no duplicates.
        """
        if interval is None:
            interval = self.refresh_interval
        rng = self.rng
        last = len(self._buckets) - 1
        wanted = [
            i
            for i, b in enumerate(self._buckets)
            if now - b.last_refreshed >= interval and (b.peers or not non_empty_only)
        ]
        keys: dict[int, bytes] = {}
        search = [i for i in wanted if i < last]
        missing = set(search)
        for _ in range(REFRESH_KEY_SEARCH if missing else 0):
            candidate = rng.getrandbits(KEY_BITS).to_bytes(32, "big")
            pos = int.from_bytes(hashlib.sha256(candidate).digest(), "big")
            index = min(self._cpl(pos), last)
            if index in missing:
                keys[index] = candidate
                missing.discard(index)
                if not missing:
                    break
        out: list[bytes] = []
        self_lookup = False
        for i in wanted:
            if i in keys:
                out.append(keys[i])
            elif not self_lookup:
                self_lookup = True
                out.append(self.local_id)
        return out
