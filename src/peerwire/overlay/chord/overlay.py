"""``ChordOverlay``: the Chord ring behind the :class:`~peerwire.overlay.Overlay` interface.

What relay and broadcast call: :meth:`ChordOverlay.next_hop` /
:meth:`~ChordOverlay.next_hops` / :meth:`~ChordOverlay.is_responsible` (the
classic-Chord ownership rule, see :mod:`.ring`) and
:meth:`~ChordOverlay.tree_children` (the exactly-once broadcast tree).

Middleware: every change of the lists is reported on the overlay hooks
(``SUCCESSOR_ADDED`` ... ``NEIGHBOUR_REMOVED``), in order, from one drain task
that exists only while events are waiting; and the relay priority of a
candidate next hop goes through the ``RELAY_PRIORITY`` chain (default: lower
RTT first).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import PeerwireError
from ...host.middleware import Hook, Middleware
from ...identity.multiaddr import Multiaddr
from ...identity.peer_id import PeerId
from ..base import Overlay, key_for
from .config import ChordConfig
from .ring import RingChanges, int_to_key, key_to_int
from .service import ChordService
from .wire import LookupFailed

if TYPE_CHECKING:
    from ...host.host import Host

log = logging.getLogger("peerwire.chord")

_HOOKS = (
    Hook.NEIGHBOUR_ADDED,
    Hook.SUCCESSOR_ADDED,
    Hook.PREDECESSOR_ADDED,
    Hook.FINGER_ADDED,
    Hook.SUCCESSOR_REMOVED,
    Hook.PREDECESSOR_REMOVED,
    Hook.FINGER_REMOVED,
    Hook.NEIGHBOUR_REMOVED,
)


class ChordOverlay(Overlay):
    """A node's place in a Chord ring (nnet's improved Chord; classic ownership).

    ``bootstrap``: addresses to keep redialling while the node has not joined
    (``Node`` passes its own ``bootstrap=``), so a node whose bootstrap peers
    were all unreachable at start joins later instead of staying a ring of one.
    """

    name = "chord"

    def __init__(
        self,
        host: Host,
        config: ChordConfig | None = None,
        *,
        middleware: Middleware | None = None,
        bootstrap: Iterable[Multiaddr] = (),
    ) -> None:
        self.host = host
        self.middleware = middleware if middleware is not None else host.middleware
        self.service = ChordService(host, config)
        self.service.bootstrap_addrs = list(bootstrap)
        self.config = self.service.config
        self.service.on_changes = self._on_changes
        self.service.priority = self.priority
        self._events: deque[tuple[Hook, tuple[Any, ...]]] = deque()
        self._draining = False

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Serve ``/peerwire/chord/1.0.0`` and start the stabilisation task.

        Also becomes the host's ``peer_router`` (unless one is set): a send to a
        peer we have no address for looks its id up on the ring, whose owner is
        the peer itself when it is a member.
        """
        await self.service.start()
        if self.host.peer_router is None:
            self.host.peer_router = self.find_addrs

    async def stop(self) -> None:
        if self.host.peer_router == self.find_addrs:
            self.host.peer_router = None
        await self.service.stop()

    async def find_addrs(self, peer: PeerId) -> list[Multiaddr]:
        """The host's ``peer_router``: ``peer``'s addresses from the ring ([] if not a member)."""
        try:
            found, _ = await self.service.lookup_answer(key_for(peer), 1)
        except PeerwireError as exc:
            log.info("chord could not find %s: %s", peer, exc)
            return []
        for info in found:
            if info.peer_id == peer:
                return list(info.addrs)
        return []

    async def join(self, bootstrap: Sequence[PeerId]) -> None:
        """Join through connected (or dialable) peers; no peers: start a ring of one.

        If no bootstrap peer answers, the failure is logged (not raised, like a
        bootstrap dial in ``Node.start``) and the node keeps trying every
        stabilisation round; :attr:`ready` tells when it is in.
        """
        try:
            await self.service.join(bootstrap)
        except LookupFailed as exc:
            log.warning("not in the chord ring yet (retrying every round): %s", exc)

    async def maintain(self) -> None:
        """Run one stabilisation round now (it also runs every ``stabilize_interval``)."""
        await self.service.maintain()

    @property
    def ready(self) -> bool:
        """True once the node has joined (or started a ring of its own)."""
        return self.service.ready

    @property
    def key(self) -> bytes:
        """Our 32-byte ring position (sha256 of our PeerId)."""
        return self.service.key

    # ----------------------------------------------------------------- views
    def neighbours(self) -> list[PeerId]:
        """Every peer in some list (successors, predecessors, fingers), nearest successor first."""
        return self.service.ring.neighbours()

    def successors(self) -> list[PeerId]:
        """The successor list, immediate successor first."""
        return list(self.service.ring.successors())

    def predecessors(self) -> list[PeerId]:
        """The predecessor list, immediate predecessor first."""
        return list(self.service.ring.predecessors())

    def fingers(self) -> list[list[PeerId]]:
        """The 256 finger lists: list ``i`` holds the first K nodes at or after ``id + 2**i``."""
        return [list(f) for f in self.service.ring.fingers()]

    def distinct_fingers(self) -> list[tuple[int, PeerId]]:
        """``(lowest finger index, node)`` per distinct finger, nearest first (for tables)."""
        return self.service.ring.distinct_fingers()

    # --------------------------------------------------------------- routing
    def is_responsible(self, key: bytes | PeerId) -> bool:
        """Whether ``key`` is ours: it lies in ``(predecessor, self]`` (classic Chord)."""
        return self.service.ring.is_responsible(key_to_int(key_for(key)))

    def next_hop(self, key: bytes | PeerId, *, exclude: Collection[PeerId] = ()) -> PeerId | None:
        """Where to forward a message for ``key``; None if we are responsible for it.

        The owner directly when our lists name it, else the best node in the
        highest finger interval before the key (``RELAY_PRIORITY``, default
        lowest RTT). ``exclude`` skips peers (e.g. ones that just failed); None
        is then also returned when every candidate is excluded.
        """
        hops = self.service.ring.next_hops(key_to_int(key_for(key)), self.priority, exclude, 1)
        return hops[0] if hops else None

    def next_hops(
        self, key: bytes | PeerId, *, exclude: Collection[PeerId] = (), limit: int = 3
    ) -> list[PeerId]:
        """Up to ``limit`` next hops for ``key``, best first (alternatives for retries)."""
        return self.service.ring.next_hops(key_to_int(key_for(key)), self.priority, exclude, limit)

    def tree_children(self, limit: bytes | None) -> list[tuple[PeerId, bytes]]:
        """Where a tree broadcast goes next, and the limit each child gets.

        The origin calls it with ``limit=None`` (or its own key: the whole
        ring) and sends to each ``(child, child_limit)``; a node receiving a
        broadcast with a limit calls it with that limit. In a stable ring every
        other node receives the broadcast exactly once (N-1 deliveries).
        """
        position = None if limit is None else key_to_int(key_for(limit))
        return [(p, int_to_key(k)) for p, k in self.service.ring.tree_children(position)]

    async def find_successors(self, key: bytes | PeerId, count: int = 1) -> list[PeerId]:
        """Ask the ring for the owner of ``key`` and the ``count - 1`` nodes after it.

        While the ring changes (the owner is joining or unreachable) the answer
        may be another node's best guess. Raises ``LookupFailed`` with no answer.
        """
        found = await self.service.lookup(key_for(key), max(1, count))
        return [info.peer_id for info in found]

    def priority(self, peer: PeerId) -> float:
        """Relay priority of ``peer`` as a next hop: ``-RTT`` in ms, then the RELAY_PRIORITY chain.

        Each function gets ``(peer_id, priority)`` and returns the new priority
        (a number), ``None`` to leave it, ``(priority, go_on)`` like nnet, or
        ``False`` to stop the chain. A function that raises is logged and skipped.
        """
        rtt = self.service.rtt.get(peer, self.config.unknown_rtt)
        prio = -rtt * 1000.0
        mw = self.middleware
        if not mw.has(Hook.RELAY_PRIORITY):
            return prio
        for fn in mw.functions(Hook.RELAY_PRIORITY):
            try:
                result = fn(peer, prio)
            except Exception:
                log.exception("RELAY_PRIORITY hook %r raised", fn)
                continue
            if result is None or result is True:
                continue
            if result is False:
                break
            if isinstance(result, tuple) and len(result) == 2:
                value, go_on = result
                if value is not None:
                    prio = float(value)
                if not go_on:
                    break
                continue
            try:
                prio = float(result)
            except (TypeError, ValueError):
                log.error("RELAY_PRIORITY hook %r returned %r, not a number", fn, result)
        return prio

    # ----------------------------------------------------------------- hooks
    def _on_changes(self, changes: RingChanges[PeerId]) -> None:
        mw = self.middleware
        if not self.host.is_running or not any(mw.has(h) for h in _HOOKS):
            return
        events = self._events
        for peer in changes.neighbours_added:
            events.append((Hook.NEIGHBOUR_ADDED, (peer,)))
        for peer in changes.successors_added:
            events.append((Hook.SUCCESSOR_ADDED, (peer,)))
        for peer in changes.predecessors_added:
            events.append((Hook.PREDECESSOR_ADDED, (peer,)))
        for peer, index in changes.fingers_added:
            events.append((Hook.FINGER_ADDED, (peer, index)))
        for peer in changes.successors_removed:
            events.append((Hook.SUCCESSOR_REMOVED, (peer,)))
        for peer in changes.predecessors_removed:
            events.append((Hook.PREDECESSOR_REMOVED, (peer,)))
        for peer, index in changes.fingers_removed:
            events.append((Hook.FINGER_REMOVED, (peer, index)))
        for peer in changes.neighbours_removed:
            events.append((Hook.NEIGHBOUR_REMOVED, (peer,)))
        if events and not self._draining:
            self._draining = True
            self.host.spawn(self._drain(), name="chord hooks")

    async def _drain(self) -> None:
        try:
            while self._events:
                hook, args = self._events.popleft()
                if self.middleware.has(hook):
                    await self.middleware.run(hook, *args)
        finally:
            self._draining = False
