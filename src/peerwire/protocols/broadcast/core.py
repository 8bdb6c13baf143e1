"""The broadcast engine (sans-IO): frames and ``now`` in, frames to send and messages out.

Every received post goes through the same steps, in this order, because each
step is cheaper than the next and an attacker controls what arrives:

1. **dedup** by message id (a hash of the post; a seen-cache hit costs one
   sha256 and a dict lookup) -- a duplicate is counted and, in tree mode,
   still forwarded down its own tree;
2. **age** check (``BroadcastConfig.max_age``) so an id the seen-cache has
   forgotten cannot be replayed;
3. **signature** of the author (~0.1 ms); a post that fails is dropped and
   *not* remembered, so a forged copy cannot suppress the genuine one;
4. **validation** by the application (Spacemesh: relay only what validated):
   the engine emits a :class:`Candidate` and waits for :meth:`settle`;
5. on acceptance: **deliver** locally once and **forward** (push: the post to
   every neighbour but the sender; pull: an IHAVE; tree: to the children of
   the interval the frame carried).

The adapter (:mod:`.service`) owns the sockets, the clock and the validators;
:class:`Topology` is its view of the overlay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from ...errors import PeerwireError, ProtocolError
from ..relay.authors import Authors
from . import codec
from .pull import Body, PullState
from .push import flood_targets
from .seen import SeenCache, TimedCache

if TYPE_CHECKING:
    from collections.abc import Callable

    from ...identity.peer_id import PeerId
    from .config import BroadcastConfig

log = logging.getLogger("peerwire.broadcast")

BroadcastMode = Literal["push", "pull", "tree"]
MODES = ("push", "pull", "tree")

_PENDING, _ACCEPTED, _REJECTED = 0, 1, 2
_NO_LIMIT = bytes(codec.LIMIT_BYTES)


class Topology(Protocol):
    """The adapter's view of the overlay for one step."""

    def neighbours(self) -> list[PeerId]: ...

    def tree_children(self, limit: bytes | None, tree: int) -> list[tuple[PeerId, bytes]]:
        """Children in tree ``tree`` for the interval ``(self, limit)`` (None: the whole
        ring); [] if the overlay has no tree."""
        ...


@dataclass(frozen=True, slots=True)
class BroadcastStats:
    """Counters of one node's broadcast traffic (a snapshot). Sum ``delivered`` over
    the nodes of a network to check "exactly N-1 deliveries"."""

    originated: int = 0
    delivered: int = 0
    """Messages accepted here and handed to local delivery (once per message)."""
    duplicates: int = 0
    """Copies of a message already seen here, suppressed (not delivered again)."""
    rejected: int = 0
    """Refused by the validator: neither delivered nor passed on."""
    invalid: int = 0
    """Malformed frames, bad signatures, posts outside ``max_age``."""
    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    bytes_received: int = 0
    bodies_sent: int = 0
    """Pull: BODY frames sent in answer to IWANTs."""
    bodies_received: int = 0
    """Pull: BODY frames accepted as answers (sum over nodes: exactly N-1 normally)."""
    ihave_sent: int = 0
    ihave_received: int = 0
    ihave_duplicates: int = 0
    """Pull: announcements of ids already seen here (cheap; bodies are never duplicated)."""
    iwant_sent: int = 0
    iwant_missed: int = 0
    """Pull: IWANTs for ids no longer in the body cache."""
    fetch_retries: int = 0
    """Pull: fetches re-asked from another announcer after ``fetch_timeout``."""
    fetch_failed: int = 0
    """Pull: fetches given up (no announcer left)."""
    unsolicited_bodies: int = 0
    """Pull: BODY frames for ids we did not ask that peer for (dropped)."""
    hop_limit_reached: int = 0
    """Copies delivered but not passed on because they travelled ``hop_limit`` links."""
    dropped_congestion: int = 0
    """Frames not sent because the neighbour's queue was full or the send failed."""
    dropped_fetch_limit: int = 0
    dropped_validation_limit: int = 0
    seen_evicted: int = 0
    """Ids forgotten before ``seen_ttl`` because the seen-cache was full."""


_COUNTERS = tuple(n for n in BroadcastStats.__slots__ if n != "seen_evicted")


@dataclass(slots=True)
class Candidate:
    """A verified post waiting for the application's verdict, then delivered."""

    post: codec.Post
    author: PeerId
    hops: int
    mode: BroadcastMode
    via: PeerId


@dataclass(slots=True)
class Output:
    sends: list[tuple[PeerId, bytes]] = field(default_factory=list)
    check: list[Candidate] = field(default_factory=list)
    """Ask the validator, then call :meth:`BroadcastCore.settle`."""
    deliver: list[Candidate] = field(default_factory=list)


@dataclass(slots=True)
class _Forward:
    mode: BroadcastMode
    hops: int
    hop_limit: int = 0
    exclude: frozenset[PeerId] = frozenset()
    tree: int = 0
    limit: bytes = _NO_LIMIT


@dataclass(slots=True)
class _Pending:
    candidate: Candidate
    forwards: list[_Forward]


class BroadcastCore:
    """One node's broadcast state machine."""

    def __init__(
        self,
        local: PeerId,
        *,
        sign: Callable[[bytes], bytes],
        key: bytes,
        config: BroadcastConfig,
    ) -> None:
        self.local = local
        self._local_bytes = local.to_bytes()
        self._sign = sign
        self._key = key
        self.config = config
        self._seen: TimedCache[bytes, int] = TimedCache(
            max_entries=config.seen_size, ttl=config.seen_ttl
        )
        self._tree_seen = SeenCache(max_entries=config.seen_size, ttl=config.seen_ttl)
        self._pending: dict[bytes, _Pending] = {}
        self.pull = PullState(
            fetch_timeout=config.fetch_timeout,
            max_fetches=config.max_fetches,
            max_announcers=config.max_announcers,
            body_cache_size=config.body_cache_size,
            body_cache_ttl=config.body_cache_ttl,
        )
        self._authors = Authors()
        self.counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)

    def stats(self) -> BroadcastStats:
        return BroadcastStats(
            **self.counts, seen_evicted=self._seen.evicted + self._tree_seen.evicted
        )

    @property
    def pending_validations(self) -> int:
        return len(self._pending)

    # -------------------------------------------------------------- sending
    def _send(self, out: Output, peer: PeerId, frame: bytes) -> None:
        out.sends.append((peer, frame))
        counts = self.counts
        counts["frames_sent"] += 1
        counts["bytes_sent"] += len(frame)

    def publish(
        self,
        mode: BroadcastMode,
        protocol: str,
        payload: bytes,
        *,
        now: float,
        wall_ms: int,
        nonce: int,
        topology: Topology,
        copies: int = 1,
        hop_limit: int | None = None,
    ) -> tuple[bytes, Output]:
        """Author a message; returns its id and the frames to send."""
        limit = self.config.hop_limit if hop_limit is None else hop_limit
        post = codec.encode_post(
            wall_ms, nonce, self._local_bytes, self._key, protocol, payload, self._sign
        )
        msg_id = post.id
        self._seen.put(msg_id, _ACCEPTED, now)
        self.counts["originated"] += 1
        out = Output()
        if mode == "push":
            frame = codec.encode_push(0, limit, post.raw)
            for peer in flood_targets(topology.neighbours(), (), 0, limit):
                self._send(out, peer, frame)
        elif mode == "pull":
            self.pull.bodies.put(msg_id, Body(post.raw, 0, limit), now)
            frame = codec.encode_ids(codec.IHAVE, [msg_id], 0, limit)
            for peer in flood_targets(topology.neighbours(), (), 0, limit):
                self._send(out, peer, frame)
                self.counts["ihave_sent"] += 1
        else:
            for tree in range(copies):
                self._tree_seen.add(msg_id + bytes((tree,)), now)
                self._tree_forward(out, post.raw, _Forward("tree", 0, tree=tree), topology, None)
        return msg_id, out

    def _tree_forward(
        self,
        out: Output,
        raw: bytes,
        fwd: _Forward,
        topology: Topology,
        limit: bytes | None,
    ) -> None:
        for child, child_limit in topology.tree_children(limit, fwd.tree):
            if child != self.local:
                self._send(out, child, codec.encode_tree(fwd.hops, fwd.tree, child_limit, raw))

    def _run(
        self, out: Output, post: codec.Post, fwd: _Forward, topology: Topology, now: float
    ) -> None:
        if fwd.mode == "tree":
            self._tree_forward(out, post.raw, fwd, topology, fwd.limit)
            return
        targets = flood_targets(topology.neighbours(), fwd.exclude, fwd.hops, fwd.hop_limit)
        if fwd.hops >= fwd.hop_limit:
            self.counts["hop_limit_reached"] += 1
        if fwd.mode == "push":
            frame = codec.encode_push(fwd.hops, fwd.hop_limit, post.raw)
        else:
            self.pull.bodies.put(post.id, Body(post.raw, fwd.hops, fwd.hop_limit), now)
            frame = codec.encode_ids(codec.IHAVE, [post.id], fwd.hops, fwd.hop_limit)
            self.counts["ihave_sent"] += len(targets)
        for peer in targets:
            self._send(out, peer, frame)

    # ------------------------------------------------------------ receiving
    def receive(
        self, peer: PeerId, data: bytes, *, now: float, wall_ms: int, topology: Topology
    ) -> Output:
        """Handle one frame from neighbour ``peer``."""
        counts = self.counts
        counts["frames_received"] += 1
        counts["bytes_received"] += len(data)
        out = Output()
        try:
            frame = codec.decode_frame(data)
        except ProtocolError as exc:
            counts["invalid"] += 1
            log.warning("dropping malformed broadcast frame from %s: %s", peer, exc)
            return out
        kind = frame.type
        if kind == codec.IHAVE:
            self._on_ihave(out, peer, frame, now)
        elif kind == codec.IWANT:
            self._on_iwant(out, peer, frame, now)
        else:
            post = frame.post
            assert post is not None
            hops = min(frame.hops + 1, 255)
            if kind == codec.PUSH:
                fwd = _Forward("push", hops, frame.hop_limit, frozenset((peer,)))
            elif kind == codec.TREE:
                if not self._tree_seen.add(post.id + bytes((frame.tree,)), now):
                    counts["duplicates"] += 1
                    return out
                fwd = _Forward("tree", hops, tree=frame.tree, limit=frame.limit)
            else:
                fetch = self.pull.expects(post.id, peer)
                if fetch is None:
                    counts["unsolicited_bodies"] += 1
                    log.debug("dropping unsolicited broadcast body from %s", peer)
                    return out
                exclude = frozenset((*fetch.asked, *fetch.fallbacks))
                fwd = _Forward("pull", hops, frame.hop_limit, exclude)
            self._admit(out, peer, post, fwd, now, wall_ms, topology)
        return out

    def _admit(
        self,
        out: Output,
        peer: PeerId,
        post: codec.Post,
        fwd: _Forward,
        now: float,
        wall_ms: int,
        topology: Topology,
    ) -> None:
        msg_id = post.id
        counts = self.counts
        state = self._seen.get(msg_id, now)
        if state is not None:
            if fwd.mode == "pull":
                self.pull.done(msg_id)
                counts["bodies_received"] += 1
            counts["duplicates"] += 1
            if fwd.mode == "tree":
                if state == _ACCEPTED:
                    self._tree_forward(out, post.raw, fwd, topology, fwd.limit)
                elif state == _PENDING and msg_id in self._pending:
                    self._pending[msg_id].forwards.append(fwd)
            return
        author = self._check(post, peer, wall_ms)
        if author is None:
            counts["invalid"] += 1
            if fwd.mode == "pull":  # that announcer served garbage: ask the next one
                self._refetch(out, msg_id, now)
            return
        if fwd.mode == "pull":
            self.pull.done(msg_id)
            counts["bodies_received"] += 1
        self._seen.put(msg_id, _PENDING, now)
        candidate = Candidate(post, author, fwd.hops, fwd.mode, peer)
        self._pending[msg_id] = _Pending(candidate, [fwd])
        out.check.append(candidate)

    def _check(self, post: codec.Post, peer: PeerId, wall_ms: int) -> PeerId | None:
        max_age = self.config.max_age
        if max_age and abs(wall_ms - post.timestamp_ms) > max_age * 1000:
            log.warning(
                "dropping broadcast %s from %s: timestamp %.0f s away from our clock",
                post.id.hex(),
                peer,
                (wall_ms - post.timestamp_ms) / 1000,
            )
            return None
        try:
            author = self._authors.verify(
                post.author, post.key, codec.signed_bytes(post.digest), post.signature
            )
        except PeerwireError:
            author = None
        if author is None:
            log.warning("dropping broadcast %s from %s: bad author signature", post.id.hex(), peer)
        return author

    def settle(self, msg_id: bytes, accepted: bool, *, now: float, topology: Topology) -> Output:
        """The validator's verdict on a :class:`Candidate`: deliver and forward, or drop."""
        out = Output()
        pending = self._pending.pop(msg_id, None)
        if pending is None:
            return out
        state = _ACCEPTED if accepted else _REJECTED
        if msg_id in self._seen:
            self._seen.replace(msg_id, state)
        else:
            self._seen.put(msg_id, state, now)
        if not accepted:
            self.counts["rejected"] += 1
            return out
        self.counts["delivered"] += 1
        out.deliver.append(pending.candidate)
        for fwd in pending.forwards:
            self._run(out, pending.candidate.post, fwd, topology, now)
        return out

    def abandon(self, msg_id: bytes) -> None:
        """Forget a candidate that could not be validated (a later copy may try again)."""
        if self._pending.pop(msg_id, None) is not None:
            self._seen.pop(msg_id)

    # ----------------------------------------------------------------- pull
    def _on_ihave(self, out: Output, peer: PeerId, frame: codec.Frame, now: float) -> None:
        assert frame.ids is not None
        counts = self.counts
        counts["ihave_received"] += len(frame.ids)
        wanted: list[bytes] = []
        for msg_id in frame.ids:
            if self._seen.get(msg_id, now) is not None:
                counts["ihave_duplicates"] += 1
                continue
            verdict = self.pull.announced(msg_id, peer, frame.hops, frame.hop_limit, now)
            if verdict is None:
                counts["dropped_fetch_limit"] += 1
            elif verdict:
                wanted.append(msg_id)
            else:
                counts["ihave_duplicates"] += 1
        if wanted:
            self._send(out, peer, codec.encode_ids(codec.IWANT, wanted))
            counts["iwant_sent"] += len(wanted)

    def _on_iwant(self, out: Output, peer: PeerId, frame: codec.Frame, now: float) -> None:
        assert frame.ids is not None
        for msg_id in frame.ids:
            body = self.pull.bodies.get(msg_id, now)
            if body is None:
                self.counts["iwant_missed"] += 1
                continue
            self._send(
                out, peer, codec.encode_push(body.hops, body.hop_limit, body.post_raw, body=True)
            )
            self.counts["bodies_sent"] += 1

    def _refetch(self, out: Output, msg_id: bytes, now: float) -> None:
        peer = self.pull.retry(msg_id, now)
        if peer is None:
            self.counts["fetch_failed"] += 1
            log.info("giving up fetching broadcast %s: no announcer left", msg_id.hex())
            return
        self.counts["fetch_retries"] += 1
        self._send(out, peer, codec.encode_ids(codec.IWANT, [msg_id]))
        self.counts["iwant_sent"] += 1

    def tick(self, now: float) -> Output:
        """Re-ask fetches whose body did not come in time; call at :meth:`next_deadline`."""
        out = Output()
        for msg_id in self.pull.due(now):
            self._refetch(out, msg_id, now)
        return out

    def next_deadline(self) -> float | None:
        return self.pull.next_deadline()
