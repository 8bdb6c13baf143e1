"""The Chord ring state of one node, sans-IO: pure functions of keys.

Ids are 256-bit integers (the overlay key of a PeerId, ``sha256(peer id bytes)``,
read big-endian). Distances run clockwise: ``(b - a) mod 2**256``.

**Ownership (classic Chord).** Node ``n`` is responsible for the keys in
``(predecessor(n), n]``: a key belongs to its successor, the first node at or
after it. So routing to ``key_for(peer)`` lands on that very peer. (nnet uses
the reverse, ``[n, successor(n))``; we follow the issue and the Chord paper.)

**What a node keeps.** One sorted list of known nodes (by distance from us),
from which every view is a window:

* the successor list: the first S known nodes;
* the predecessor list: the last P known nodes (closest first);
* 256 finger lists: list ``i`` covers ``[id + 2**i, id + 2**(i+1))`` and holds
  the first K known nodes at or after its start ``id + 2**i`` (wrapping round);
  most low lists are the same window, so only the distinct ones are computed.

S and P are at least the configured minimum and grow to twice the number of
non-empty finger intervals (intervals holding a known node; about log2 N),
capped by the maximum. A node that falls outside every window is dropped at
once: so a closer node evicts the farthest when a list is full, and the node
set *is* the set of neighbours (the adapter closes connections to the rest).

Some owners are known for sure in a stable ring: the node after the key
inside the successor or predecessor list (runs of consecutive nodes, checked
every round), and the nodes a find-successors answer named (a finger lookup
answers "the owner of this start, then the nodes after it", see
:meth:`Ring.record_run`). :meth:`Ring.next_hops` jumps straight to such an
owner; otherwise it forwards greedily into the highest finger interval that
holds a node before the key. In a stable ring each greedy hop at least halves
the distance to the key and the last hop, from the successor lists (about
2 log2 N long), is direct; every route of the tests on ideal rings of 16, 100
and 1,000 random ids stays within log2(N) hops (halving alone would not
promise that). A greedy hop never passes the key; a jump to a vouched-for
owner can overshoot while the answer behind it is stale (a node joined since),
and the node overshot then steps back through its predecessors. Churn costs
hops until the next rounds repair the lists; message TTLs bound the rest.

The ring is generic over the peer handle ``P`` (a PeerId in the overlay, any
hashable in tests and simulations).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

KEY_BITS = 256
RING_SIZE = 1 << KEY_BITS
MASK = RING_SIZE - 1

P = TypeVar("P", bound=Hashable)


def key_to_int(key: bytes) -> int:
    """A 32-byte overlay key as a ring position."""
    return int.from_bytes(key, "big")


def int_to_key(value: int) -> bytes:
    """A ring position as a 32-byte overlay key."""
    return (value & MASK).to_bytes(KEY_BITS // 8, "big")


def clockwise(a: int, b: int) -> int:
    """Distance from ``a`` to ``b`` going clockwise (0 when equal)."""
    return (b - a) & MASK


def finger_start(key: int, index: int) -> int:
    """The start of finger interval ``index`` of the node at ``key``."""
    return (key + (1 << index)) & MASK


@dataclass(frozen=True, slots=True)
class RingChanges(Generic[P]):
    """Who entered and left each role in one update (what the overlay hooks report).

    Finger entries carry the finger interval the peer lies in: ``(peer, i)``
    with the peer in ``[id + 2**i, id + 2**(i+1))``.
    """

    successors_added: tuple[P, ...] = ()
    successors_removed: tuple[P, ...] = ()
    predecessors_added: tuple[P, ...] = ()
    predecessors_removed: tuple[P, ...] = ()
    fingers_added: tuple[tuple[P, int], ...] = ()
    fingers_removed: tuple[tuple[P, int], ...] = ()
    neighbours_added: tuple[P, ...] = ()
    neighbours_removed: tuple[P, ...] = ()

    def __bool__(self) -> bool:
        return bool(
            self.successors_added
            or self.successors_removed
            or self.predecessors_added
            or self.predecessors_removed
            or self.fingers_added
            or self.fingers_removed
            or self.neighbours_added
            or self.neighbours_removed
        )


def _diff(old: tuple[P, ...], new: tuple[P, ...]) -> tuple[tuple[P, ...], tuple[P, ...]]:
    old_set, new_set = set(old), set(new)
    return tuple(p for p in new if p not in old_set), tuple(p for p in old if p not in new_set)


_SIZES = (
    "finger_successors",
    "min_successors",
    "max_successors",
    "min_predecessors",
    "max_predecessors",
)


def _interval(distance: int) -> int:
    return distance.bit_length() - 1


class Ring(Generic[P]):
    """Successor, predecessor and finger lists of the node ``me`` at ring position ``key``."""

    __slots__ = (
        "_all_fingers",
        "_bits",
        "_cert",
        "_chain",
        "_claims",
        "_dist_of",
        "_dists",
        "_fingers",
        "_peers",
        "_pred_n",
        "_stale",
        "_succ_n",
        "_windows",
        "finger_successors",
        "key",
        "max_predecessors",
        "max_successors",
        "me",
        "min_predecessors",
        "min_successors",
    )

    def __init__(
        self,
        key: int,
        me: P,
        *,
        finger_successors: int = 3,
        min_successors: int = 8,
        max_successors: int = 32,
        min_predecessors: int = 8,
        max_predecessors: int = 32,
    ) -> None:
        self.key = key & MASK
        self.me = me
        self.finger_successors = finger_successors
        self.min_successors = min_successors
        self.max_successors = max_successors
        self.min_predecessors = min_predecessors
        self.max_predecessors = max_predecessors
        self._dists: list[int] = []
        """Clockwise distances from us of the known nodes, ascending."""
        self._peers: list[P] = []
        """The known nodes, parallel to ``_dists``."""
        self._dist_of: dict[P, int] = {}
        self._cert: list[int] = []
        """``_cert[j]``: keys at distances in ``[_cert[j], _dists[j]]`` surely belong to node j."""
        self._windows: list[tuple[int, int]] = []
        """Distinct finger windows as (lowest finger index, index of the first node)."""
        self._fingers: dict[P, int] = {}
        """Peers in some finger window -> the finger interval they lie in."""
        self._succ_n = 0
        self._pred_n = 0
        self._bits: set[int] = set()
        """Bit lengths of the known distances: the non-empty finger intervals (+1)."""
        self._claims: dict[P, int] = {}
        """Peer -> lowest distance it owns from, as an answer said."""
        self._chain = 0
        """How many of our first successors are known to follow each other."""
        self._stale = False
        """The lists or claims changed since ``_cert`` and ``_chain`` were computed."""
        self._all_fingers: list[tuple[P, ...]] | None = None

    # ---------------------------------------------------------------- updates
    def offer(self, entries: Iterable[tuple[int, P]]) -> RingChanges[P]:
        """Consider nodes ``(key, peer)``: keep those that fit a list, evict what they displace."""
        dists, peers, dist_of = self._dists, self._peers, self._dist_of
        me, key = self.me, self.key
        changed = False
        entries = [(k, p) for k, p in entries if dist_of.get(p) != (k - key) & MASK and p != me]
        if not entries:
            return RingChanges()
        before = self._snapshot()
        if len(entries) > 32 and not dists:
            # Bulk start (a joining node's first answer, ideal rings): sort once.
            fresh: dict[int, P] = {}
            for node_key, peer in entries:
                d = (node_key - key) & MASK
                if d and peer != me and peer not in dist_of and d not in fresh:
                    fresh[d] = peer
                    dist_of[peer] = d
            for d in sorted(fresh):
                dists.append(d)
                peers.append(fresh[d])
            changed = bool(fresh)
            entries = []
        for node_key, peer in entries:
            d = (node_key - key) & MASK
            if d == 0 or peer == me:
                continue
            old = dist_of.get(peer)
            if old == d:
                continue
            if old is not None:  # same handle, other key: take the new one
                self._delete(peer)
            j = bisect_left(dists, d)
            if j < len(dists) and dists[j] == d:
                continue  # a different handle at the same position: keep the first
            dists.insert(j, d)
            peers.insert(j, peer)
            dist_of[peer] = d
            changed = True
        if not changed:
            return RingChanges()
        self._rebuild()
        return self._changes(before)

    def remove(self, peer: P) -> RingChanges[P]:
        """Forget ``peer`` (it failed or left); the lists close up behind it."""
        if peer not in self._dist_of:
            return RingChanges()
        before = self._snapshot()
        self._delete(peer)
        self._rebuild()
        return self._changes(before)

    def wanted(self, entries: Iterable[tuple[int, P]]) -> list[tuple[int, P]]:
        """The new entries that :meth:`offer` would keep, each judged alone against the lists now.

        The overlay dials only these before offering them. Exact for one entry;
        entries offered together may also compete with each other, which
        :meth:`offer` settles.
        """
        dists, dist_of, bits = self._dists, self._dist_of, self._bits
        n = len(dists) + 1
        out: list[tuple[int, P]] = []
        for node_key, peer in entries:
            d = (node_key - self.key) & MASK
            if d == 0 or peer == self.me or peer in dist_of:
                continue
            j = bisect_left(dists, d)
            if j < len(dists) and dists[j] == d:
                continue
            nonempty = len(bits) + (d.bit_length() not in bits)
            s = min(self.max_successors, max(self.min_successors, 2 * nonempty))
            p = min(self.max_predecessors, max(self.min_predecessors, 2 * nonempty))
            k = min(self.finger_successors, n)
            # In a finger window iff some start 2**i lies in (dists[j-k], d]: the
            # window starting there reaches us within k entries.
            if j < s or j >= n - p or j < k or dists[j - k].bit_length() < d.bit_length():
                out.append((node_key, peer))
        return out

    def kept_after(self, entries: Iterable[tuple[int, P]]) -> set[P]:
        """Which of ``entries`` would still be kept after offering them all together.

        Exact (a trial copy of the lists): the overlay asks before dialling, so
        that nodes which would only displace each other are not dialled in vain.
        """
        trial: Ring[P] = Ring(self.key, self.me)
        for name in _SIZES:
            setattr(trial, name, getattr(self, name))
        trial._dists = list(self._dists)
        trial._peers = list(self._peers)
        trial._dist_of = dict(self._dist_of)
        batch = list(entries)
        trial.offer(batch)
        return {p for _, p in batch if p in trial._dist_of}

    def between(self, low: int, high: int) -> list[P]:
        """Kept nodes at clockwise distances in ``[low, high)`` from us."""
        dists = self._dists
        return self._peers[bisect_left(dists, low) : bisect_left(dists, high)]

    def _delete(self, peer: P) -> None:
        d = self._dist_of.pop(peer)
        j = bisect_left(self._dists, d)
        del self._dists[j]
        del self._peers[j]

    def _snapshot(self) -> tuple[tuple[P, ...], tuple[P, ...], dict[P, int], tuple[P, ...]]:
        # _fingers is replaced, never mutated, by _layout: no copy needed.
        return (self.successors(), self.predecessors(), self._fingers, tuple(self._peers))

    def _changes(
        self, before: tuple[tuple[P, ...], tuple[P, ...], dict[P, int], tuple[P, ...]]
    ) -> RingChanges[P]:
        succ, pred, fingers, nodes = before
        s_add, s_rm = _diff(succ, self.successors())
        p_add, p_rm = _diff(pred, self.predecessors())
        n_add, n_rm = _diff(nodes, tuple(self._peers))
        now = self._fingers
        f_add = tuple((p, i) for p, i in now.items() if p not in fingers)
        f_rm = tuple((p, i) for p, i in fingers.items() if p not in now)
        return RingChanges(s_add, s_rm, p_add, p_rm, f_add, f_rm, n_add, n_rm)

    def _rebuild(self) -> None:
        keep = self._layout()
        n = len(self._dists)
        if len(keep) < n:
            drop = [self._peers[j] for j in range(n) if j not in keep]
            for peer in drop:
                del self._dist_of[peer]
            order = sorted(keep)
            self._dists = [self._dists[j] for j in order]
            self._peers = [self._peers[j] for j in order]
            # Dropped nodes were in no window, so the windows (and the number of
            # non-empty finger intervals) are the same: nothing more is dropped.
            self._layout()

    def _layout(self) -> set[int]:
        """Recompute the windows; return the indices of the nodes some window holds."""
        dists = self._dists
        n = len(dists)
        if n == 0:
            self._succ_n = self._pred_n = 0
            self._windows, self._fingers = [], {}
            self._bits = set()
            self._stale = True
            self._all_fingers = None
            return set()
        self._bits = {d.bit_length() for d in dists}
        nonempty = len(self._bits)
        s = min(self.max_successors, max(self.min_successors, 2 * nonempty))
        p = min(self.max_predecessors, max(self.min_predecessors, 2 * nonempty))
        s_n, p_n, k = min(s, n), min(p, n), min(self.finger_successors, n)
        self._succ_n, self._pred_n = s_n, p_n
        keep = set(range(s_n))
        keep.update(range(n - p_n, n))
        windows: list[tuple[int, int]] = []
        fingers: dict[P, int] = {}
        peers = self._peers
        prev = -1
        for i in range(max(0, _interval(dists[0])), KEY_BITS):
            m = bisect_left(dists, 1 << i, max(prev, 0))
            if m == prev:
                continue
            if m == n:
                break  # this and every higher start lies past all known nodes
            windows.append((0 if m == 0 else i, m))
            prev = m
            for a in range(k):
                j = (m + a) % n
                keep.add(j)
                fingers.setdefault(peers[j], _interval(dists[j]))
        self._windows, self._fingers = windows, fingers
        self._all_fingers = None
        self._stale = True
        return keep

    def _certify(self) -> list[int]:
        """``cert`` (see ``_cert``), recomputed from the claims if the lists or claims changed.

        Lazy: updates come in bursts (an answer offers many nodes), reads are
        per routed message.
        """
        if not self._stale:
            return self._cert
        self._stale = False
        claims = self._claims
        dist_of, dists = self._dist_of, self._dists
        cert = list(dists)
        self._cert = cert
        if not dists:
            claims.clear()
            self._chain = 0
            return cert
        cert[0] = 1  # (self, successor] is our successor's, whatever else we know
        for peer in [p for p in claims if p not in dist_of]:
            del claims[peer]
        invalid = []
        for peer, low in claims.items():
            d = dist_of[peer]
            j = bisect_left(dists, d)
            if (dists[j - 1] + 1 if j else 1) <= low <= d:
                cert[j] = min(cert[j], low)
            else:  # we know a node inside the claimed range: the claim is stale
                invalid.append(peer)
        for peer in invalid:
            del claims[peer]
        # The successors known to follow each other from our first one on.
        chain = 1
        n = len(dists)
        while chain < n and cert[chain] == dists[chain - 1] + 1:
            chain += 1
        self._chain = chain
        return cert

    def record_run(self, key: int, run: Iterable[P]) -> None:
        """Remember a find-successors answer: ``run[0]`` owns ``key``, each next node the gap after.

        Successor-list and finger entries vouch for an owner range only through
        such answers, never merely because they are the first node we know past
        a point, so a node we just heard of does not make us jump past a key.
        A claim lapses when we learn of a node inside its range, or when its
        node leaves; answers older than a round may still be stale.
        """
        low = (key - self.key) & MASK
        if low:
            self._record(low, run)
            self._stale = True

    def record_predecessors(self, run: Iterable[P]) -> None:
        """Remember a predecessor list ``[p1, p2, ...]`` (nearest first) as consecutive nodes.

        From our predecessor's answer: each ``p[i]`` owns ``(p[i+1], p[i]]``.
        """
        self._record(None, list(run)[::-1])
        self._stale = True

    def _record(self, low: int | None, run: Iterable[P]) -> None:
        """Claims for an ascending run of consecutive nodes, the first owning from ``low``."""
        dist_of, claims = self._dist_of, self._claims
        for peer in run:
            d = dist_of.get(peer)
            if d is None:
                low = None  # a node we do not keep: the chain goes on, unclaimed
                continue
            if low is not None and low <= d:
                claims[peer] = low  # the latest answer wins: older ones may be stale
            low = d + 1

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self._peers)

    def __contains__(self, peer: object) -> bool:
        return peer in self._dist_of

    def neighbours(self) -> list[P]:
        """Every node kept, nearest successor first (the union of all lists)."""
        return list(self._peers)

    def successors(self) -> tuple[P, ...]:
        return tuple(self._peers[: self._succ_n])

    def predecessors(self) -> tuple[P, ...]:
        """Immediate predecessor first."""
        n = len(self._peers)
        return tuple(self._peers[j] for j in range(n - 1, n - 1 - self._pred_n, -1))

    def vouched_successors(self) -> int:
        """How many of the first successors are known to follow one another (and us).

        Entries past these fill the successor list from other sources (fingers,
        predecessor lists) and may have unknown nodes between them; the overlay
        extends the vouched run by asking its last node for its successors.
        """
        self._certify()
        return self._chain

    @property
    def successor(self) -> P | None:
        return self._peers[0] if self._peers else None

    @property
    def predecessor(self) -> P | None:
        return self._peers[-1] if self._peers else None

    def finger(self, index: int) -> tuple[P, ...]:
        """Finger list ``index``: the first K known nodes at or after ``id + 2**index``."""
        n = len(self._peers)
        if n == 0:
            return ()
        m = bisect_left(self._dists, 1 << index)
        return tuple(self._peers[(m + a) % n] for a in range(min(self.finger_successors, n)))

    def fingers(self) -> list[tuple[P, ...]]:
        """All 256 finger lists (list ``i`` starts at ``id + 2**i``); cached per change."""
        cached = self._all_fingers
        if cached is None:
            cached = self._all_fingers = [self.finger(i) for i in range(KEY_BITS)]
        return list(cached)

    def distinct_fingers(self) -> list[tuple[int, P]]:
        """``(lowest finger index, first node)`` for each distinct finger window, nearest first."""
        return [(i, self._peers[m]) for i, m in self._windows]

    def finger_peers(self) -> dict[P, int]:
        """Peers held in some finger list -> the finger interval they lie in."""
        return dict(self._fingers)

    def key_of(self, peer: P) -> int | None:
        d = self._dist_of.get(peer)
        return None if d is None else (self.key + d) & MASK

    def distance_of(self, peer: P) -> int | None:
        """Clockwise distance from us to ``peer`` (None if not kept)."""
        return self._dist_of.get(peer)

    # ---------------------------------------------------------------- routing
    def is_responsible(self, key: int) -> bool:
        """Whether ``key`` lies in ``(predecessor, self]`` (a node alone owns everything)."""
        dists = self._dists
        d = (key - self.key) & MASK
        return d == 0 or not dists or d > dists[-1]

    def next_hops(
        self,
        key: int,
        priority: Callable[[P], float] | None = None,
        exclude: Collection[P] = (),
        limit: int = 1,
    ) -> list[P]:
        """Up to ``limit`` nodes to forward ``key`` to, best first; empty if we are responsible.

        First the owner, when a list certifies it (a direct last hop). Then the
        greedy candidates: the nodes strictly between us and the key, from the
        highest finger interval down; within one interval, the highest
        ``priority`` first and, on ties, the closest to the key. ``exclude``
        lists peers not to use (e.g. ones that just failed); with everything
        excluded the result is empty too.
        """
        dists, peers = self._dists, self._peers
        d = (key - self.key) & MASK
        if d == 0 or not dists or d > dists[-1]:
            return []
        j = bisect_left(dists, d)
        out: list[P] = []
        behind = j > len(dists) - self._pred_n  # between two of our predecessors
        if peers[j] not in exclude and (behind or d >= self._certify()[j]):
            # The owner our lists vouch for; or, for a key between two of our
            # predecessors, the nearest node we know after it (a short step back,
            # not a trip round the ring: it knows its predecessors better than we).
            out.append(peers[j])
        idx = j - 1
        while idx >= 0 and len(out) < limit:
            lo = bisect_left(dists, 1 << _interval(dists[idx]), 0, idx + 1)
            group = [peers[x] for x in range(idx, lo - 1, -1) if peers[x] not in exclude]
            if priority is not None and len(group) > 1:
                group.sort(key=priority, reverse=True)  # stable: ties stay closest-first
            out.extend(group)
            idx = lo - 1
        return out[:limit]

    def owner_run(self, key: int, count: int) -> list[P] | None:
        """The owner of ``key`` and the nodes after it, if our lists certify them; else None.

        This is how a node answers find-successors without forwarding: the run
        follows consecutive known nodes (through us, when the key is ours or
        lies among our predecessors) and stops where certainty ends.
        """
        dists, peers, cert = self._dists, self._peers, self._certify()
        n = len(dists)
        d = (key - self.key) & MASK
        if d == 0 or n == 0 or d > dists[-1]:
            return [self.me, *peers[: min(self._chain, count - 1)]]
        j = bisect_left(dists, d)
        if d < cert[j]:
            return None
        out = [peers[j]]
        while len(out) < count:
            if j + 1 < n and cert[j + 1] == dists[j] + 1:
                j += 1
                out.append(peers[j])
            elif j == n - 1:  # our predecessor: we follow it, then our successors
                out.append(self.me)
                out.extend(peers[: min(self._chain, count - len(out))])
                break
            else:
                break
        return out

    def guess_run(self, key: int, count: int) -> list[P]:
        """The ``count`` nodes we know at or after ``key``: a best guess at its successors.

        For when the owner cannot be asked (it is unreachable or still joining):
        a joining node is better served by a guess that stabilisation then
        corrects than by no answer.
        """
        if self.is_responsible(key):
            return [self.me, *self._peers[: count - 1]]
        dists, peers = self._dists, self._peers
        j = bisect_left(dists, (key - self.key) & MASK)
        n = len(peers)
        return [peers[(j + a) % n] for a in range(min(count, n))]

    # ------------------------------------------------------------- broadcast
    def tree_children(self, limit: int | None = None) -> list[tuple[P, int]]:
        """Children of this node in a broadcast tree covering ``(self, limit)``.

        The limit-interval scheme (El-Ansary et al.): the distinct finger nodes
        inside ``(self, limit)``, nearest first; each child gets the next one's
        key as its own limit and the last child gets ``limit``. Children's
        intervals are disjoint and cover every node of ``(self, limit)`` that
        our fingers see, so in a stable ring a broadcast started with
        ``limit=None`` (= our own key: the whole ring) reaches each of the other
        N-1 nodes exactly once.
        """
        dists, peers = self._dists, self._peers
        if not dists:
            return []
        top = RING_SIZE if limit is None else ((limit - self.key) & MASK) or RING_SIZE
        chosen = [m for _, m in self._windows if dists[m] < top]
        end = self.key if limit is None else limit & MASK
        out: list[tuple[P, int]] = []
        for a, m in enumerate(chosen):
            nxt = (self.key + dists[chosen[a + 1]]) & MASK if a + 1 < len(chosen) else end
            out.append((peers[m], nxt))
        return out

    # ------------------------------------------------------------ maintenance
    def sweep_floor(self) -> int:
        """The lowest finger index whose start lies past our checked successors (256: none).

        Lower fingers fall among the successors our successor's list vouches for
        (kept right by the successor checks), so the finger sweep starts here.
        """
        if not self._dists:
            return KEY_BITS
        self._certify()
        return min(KEY_BITS, self._dists[max(self._chain, 1) - 1].bit_length())
