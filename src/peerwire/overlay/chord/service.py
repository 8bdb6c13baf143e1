"""The asyncio side of the Chord overlay: RPCs, join, stabilisation, pruning.

Wire: ``/peerwire/chord/1.0.0``, one request and one answer per stream, each
a varint-length-prefixed protobuf (``chord.proto``). A stream per RPC keeps
the bookkeeping trivial and makes "is this connection in use?" a question the
muxer answers (``conn.streams``), which is what connection pruning needs. It
costs a stream negotiation per RPC (about 1 ms of CPU per RPC in the
simulator), which is fine at the rate a ring needs: about 1.6 RPCs per node
per second with the defaults once stable.

find-successors is recursive: the owner of the key answers (itself, then its
successors); every other node forwards the request to its next hop, over
connections it already has, so no lookup dials intermediate nodes. Only nodes
the ring wants to keep are dialled.

Every callback runs in the node's event loop; time is ``loop.time()`` only and
randomness comes from one seeded :class:`random.Random`, so a simulation on a
virtual clock is reproducible. One maintenance task per node, no per-peer tasks.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from ..._cache import remember
from ..._timeouts import deadline
from ...errors import (
    ClosedError,
    ConnectionLost,
    PeerwireError,
    ProtocolError,
    Timeout,
)
from ...identity.multiaddr import Multiaddr
from ...identity.peer_id import PeerId
from ...varint import encode_length_prefixed
from ..base import key_for
from .config import ChordConfig
from .ring import (
    RING_SIZE,
    Ring,
    RingChanges,
    clockwise,
    finger_start,
    int_to_key,
    key_to_int,
)
from .stabilize import Stabilizer
from .wire import (
    ChordProtocolError,
    Codec,
    LookupFailed,
    NodeInfo,
    Request,
    RequestType,
    Response,
    Status,
    read_message,
)

if TYPE_CHECKING:
    from ...host.host import Host
    from ...mux.session import MuxedConnection
    from ...mux.stream import Stream

log = logging.getLogger("peerwire.chord")

KEY_CACHE_SIZE = 8192
"""PeerId -> ring position entries cached (cleared when full)."""
RTT_SMOOTHING = 0.3
"""Weight of a new RTT sample in the moving average used for relay priority."""

_FAILURES = (ConnectionLost, ClosedError, Timeout, ProtocolError)


class ChordService:
    """One node's Chord ring: state, RPC server and client, maintenance loop."""

    def __init__(self, host: Host, config: ChordConfig | None = None) -> None:
        self.host = host
        self.config = cfg = config or ChordConfig()
        me = host.peer_id
        self.key = key_for(me)
        self.position = key_to_int(self.key)
        self.ring: Ring[PeerId] = Ring(self.position, me, **cfg.list_sizes())
        self.rng = random.Random()
        """Jitter source; seeded at start (see :meth:`start`)."""
        self.plan: Stabilizer[PeerId] = Stabilizer(cfg, self.rng)
        self.codec = Codec(cfg.max_nodes_per_message)
        self.ready = False
        """True once joined (or alone); until then find-successors is answered NOT_READY."""
        self.on_changes: Callable[[RingChanges[PeerId]], None] | None = None
        """Called with every change of the lists (the overlay turns them into hooks)."""
        self.priority: Callable[[PeerId], float] | None = None
        """Relay priority of a candidate next hop (higher first); set by the overlay."""
        self._positions: dict[PeerId, int] = {}
        self.rtt: dict[PeerId, float] = {}
        """Smoothed RTT (seconds, loop clock) of neighbours we have talked to."""
        self._dialled: set[PeerId] = set()
        self._dead: dict[PeerId, float] = {}
        self._bootstrap: list[PeerId] = []
        self.bootstrap_addrs: list[Multiaddr] = []
        """Where to look for the ring when no bootstrap peer answered ``join`` (``Node``
        sets its ``bootstrap=`` addresses here): redialled every round until joined."""
        self._inbound = 0
        self._joining = False
        self._task: asyncio.Task[object] | None = None
        self._lock = asyncio.Lock()
        self._started = False

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        seed = self.config.seed
        if seed is None:
            # On the simulator's virtual-clock loop, draw from its seeded generator
            # so that a whole simulation replays exactly; elsewhere, the OS.
            sim_rng = getattr(asyncio.get_running_loop(), "rng", None)
            if isinstance(sim_rng, random.Random):
                seed = sim_rng.getrandbits(64)
            else:
                seed = int.from_bytes(os.urandom(8), "big")
        self.rng.seed(seed ^ self.position)
        self.host.set_stream_handler(self.config.protocol, self._handle)
        self.host.disconnection_callbacks.append(self._on_disconnected)
        self._task = self.host.spawn(self._run(), name="chord stabilize")

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self.ready = False
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.host.remove_stream_handler(self.config.protocol)
        try:
            self.host.disconnection_callbacks.remove(self._on_disconnected)
        except ValueError:
            pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.plan.next_delay())
            try:
                if self.ready:
                    await self.maintain()
                elif (self._bootstrap or self.bootstrap_addrs) and not self._joining:
                    await self._rejoin()
            except asyncio.CancelledError:
                raise
            except PeerwireError as exc:
                log.info("chord round at %.1f failed: %s: %s", loop.time(), type(exc).__name__, exc)
            except Exception:
                log.exception("chord maintenance round failed")

    # ------------------------------------------------------------------ keys
    def position_of(self, peer: PeerId) -> int:
        pos = self._positions.get(peer)
        if pos is None:
            pos = int.from_bytes(hashlib.sha256(peer.to_bytes()).digest(), "big")
            remember(self._positions, peer, pos, KEY_CACHE_SIZE)
        return pos

    def _info(self, peer: PeerId) -> NodeInfo:
        if peer == self.host.peer_id:
            return NodeInfo(peer, tuple(self.host.listen_addrs))
        return NodeInfo(peer, tuple(self.host.peerstore.addrs(peer)))

    # ------------------------------------------------------------ ring state
    def _apply(self, changes: RingChanges[PeerId]) -> None:
        if not changes:
            return
        for peer in changes.neighbours_removed:
            self.plan.forget(peer)
            self.rtt.pop(peer, None)
        if self.on_changes is not None:
            self.on_changes(changes)

    def _drop(self, peer: PeerId) -> None:
        self._apply(self.ring.remove(peer))

    def _on_disconnected(self, conn: MuxedConnection) -> None:
        peer = conn.remote_peer
        self._dialled.discard(peer)
        if peer in self.ring:
            log.debug("chord neighbour %s disconnected", peer)
            self._drop(peer)

    async def _adopt(self, infos: Iterable[NodeInfo]) -> None:
        """Offer nodes learned from an answer; dial those the ring wants and can't reach yet."""
        me = self.host.peer_id
        ring = self.ring
        addrs: dict[PeerId, tuple[Multiaddr, ...]] = {}
        entries: list[tuple[int, PeerId]] = []
        for info in infos:
            peer = info.peer_id
            if peer == me or peer in ring:
                continue
            addrs[peer] = info.addrs
            entries.append((self.position_of(peer), peer))
        if not entries:
            return
        now = asyncio.get_running_loop().time()
        ready: list[tuple[int, PeerId]] = []
        dial: list[tuple[int, PeerId]] = []
        for entry in ring.wanted(entries):
            peer = entry[1]
            if self._dead.get(peer, 0.0) > now:
                continue  # failed lately: others' lists may still name it
            if self.host.connection(peer) is not None:
                ready.append(entry)
            else:
                if addrs[peer]:
                    self.host.peerstore.add_addrs(peer, addrs[peer])
                dial.append(entry)
        if dial:
            # Judged alone each was wanted; together some may only displace others.
            kept = ring.kept_after(ready + dial)
            dial = [e for e in dial if e[1] in kept]
        step = self.config.max_concurrent_dials
        for i in range(0, len(dial), step):
            batch = dial[i : i + step]
            results = await asyncio.gather(*(self._dial(p) for _, p in batch))
            ready.extend(e for e, ok in zip(batch, results, strict=True) if ok)
        if ready:
            self._apply(self.ring.offer(ready))

    async def _dial(self, peer: PeerId) -> bool:
        if self.host.connection(peer) is not None:
            return True
        try:
            conn = await self.host.connect_peer(peer)
        except (PeerwireError, OSError) as exc:
            loop = asyncio.get_running_loop()
            self._dead[peer] = loop.time() + self.config.dead_peer_ttl
            log.debug("chord: cannot reach %s: %s", peer, exc)
            return False
        if conn.raw.is_initiator:
            self._dialled.add(peer)
        return True

    # ---------------------------------------------------------------- client
    async def _call(self, peer: PeerId, req: Request, timeout: float) -> Response:
        """One RPC over a fresh stream on the existing connection to ``peer``."""
        conn = self.host.connection(peer)
        if conn is None:
            raise ConnectionLost(f"not connected to {peer}")
        async with deadline(timeout, f"chord {req.type.name} to {peer}"):
            stream = await self.host.new_stream(peer, self.config.protocol, conn=conn)
            try:
                await stream.write(encode_length_prefixed(self.codec.encode_request(req)))
                await stream.close_write()
                data = await read_message(stream, self.config.max_message_size)
            except BaseException:
                await stream.reset()
                raise
            await stream.close()
        return self.codec.decode_response(data)

    def _request(
        self, kind: RequestType, key: bytes = b"", count: int = 0, ttl: int = 0
    ) -> Request:
        addrs = tuple(self.host.listen_addrs)
        return Request(type=kind, key=key, count=count, ttl=ttl, sender_addrs=addrs)

    async def _direct(self, peer: PeerId, kind: RequestType) -> Response | None:
        """An RPC to a neighbour, with liveness bookkeeping; None if it failed."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            resp = await self._call(peer, self._request(kind), self.config.rpc_timeout)
        except _FAILURES as exc:
            self._failed(peer, exc)
            return None
        self._heard(peer, loop.time() - started)
        return resp

    def _heard(self, peer: PeerId, rtt: float | None = None) -> None:
        """An RPC with ``peer`` succeeded; bookkeeping only for ring members (bounded)."""
        if peer not in self.ring:
            return
        self.plan.heard_from(peer, asyncio.get_running_loop().time())
        if rtt is not None:
            old = self.rtt.get(peer)
            self.rtt[peer] = rtt if old is None else old + RTT_SMOOTHING * (rtt - old)

    async def _confirm(self, peer: PeerId) -> None:
        """Ping a neighbour whose place another node's answer contradicts; drop it if silent."""
        if await self._direct(peer, RequestType.PING) is None and peer in self.ring:
            self._dead[peer] = asyncio.get_running_loop().time() + self.config.dead_peer_ttl
            self._drop(peer)

    def _failed(self, peer: PeerId, exc: BaseException) -> None:
        log.debug("chord RPC to %s failed: %s: %s", peer, type(exc).__name__, exc)
        lost = isinstance(exc, ConnectionLost | ClosedError) or (
            isinstance(exc, ProtocolError) and not isinstance(exc, ChordProtocolError)
        )
        if peer in self.ring and (lost or self.plan.failed(peer)):
            loop = asyncio.get_running_loop()
            self._dead[peer] = loop.time() + self.config.dead_peer_ttl
            self._drop(peer)
            if peer in self._dialled:  # ours to close, if nobody else uses it
                self._dialled.discard(peer)
                conn = self.host.connection(peer)
                if conn is not None and conn.raw.is_initiator and not conn.streams:
                    self.host.spawn(conn.close(), name=f"chord close {peer}")

    async def lookup(self, key: bytes, count: int, *, via: PeerId | None = None) -> list[NodeInfo]:
        """The owner of ``key`` and the nodes after it (up to ``count``), asked over the network.

        Goes to ``via`` if given, else to our best next hops in turn (the owner
        itself when our lists name it: that checks the entry). A key we are
        responsible for is answered locally. Raises :class:`LookupFailed`.
        """
        found, _ = await self.lookup_answer(key, count, via=via)
        return found

    async def lookup_answer(
        self, key: bytes, count: int, *, via: PeerId | None = None
    ) -> tuple[list[NodeInfo], bool]:
        """:meth:`lookup`, and whether the answer is only a guess (not from the owner)."""
        found, guess, _ = await self.lookup_traced(key, count, via=via)
        return found, guess

    async def lookup_traced(
        self, key: bytes, count: int, *, via: PeerId | None = None
    ) -> tuple[list[NodeInfo], bool, int]:
        """:meth:`lookup_answer`, and how many nodes the request visited (0: answered here)."""
        cfg = self.config
        position = key_to_int(key)
        if via is not None:
            hops = [via]
        else:
            hops = self.ring.next_hops(position, self.priority, limit=cfg.lookup_attempts)
            if not hops:
                run = self.ring.owner_run(position, count) or [self.host.peer_id]
                return [self._info(p) for p in run], False, 0
        req = self._request(
            RequestType.FIND_SUCCESSORS, key=key, count=count, ttl=cfg.max_lookup_hops
        )
        errors: list[str] = []
        try:
            async with deadline(cfg.lookup_timeout, "chord lookup"):
                for hop in hops:
                    try:
                        resp = await self._call(hop, req, cfg.rpc_timeout)
                    except _FAILURES as exc:
                        errors.append(f"{hop}: {type(exc).__name__}: {exc}")
                        if isinstance(exc, ConnectionLost | ClosedError) and hop in self.ring:
                            self._drop(hop)
                        continue
                    if resp.status is Status.OK and resp.successors:
                        self._heard(hop)
                        return list(resp.successors), resp.approximate, resp.hops + 1
                    errors.append(f"{hop}: {resp.status.name}")
        except Timeout as exc:
            errors.append(str(exc))
        raise LookupFailed("chord lookup failed: " + "; ".join(errors))

    # ---------------------------------------------------------------- server
    async def _handle(self, stream: Stream) -> None:
        cfg = self.config
        if self._inbound >= cfg.max_inbound_rpcs:
            await stream.write(
                encode_length_prefixed(self.codec.encode_response(Response(status=Status.FAILED)))
            )
            return
        self._inbound += 1
        try:
            async with deadline(cfg.rpc_timeout, "chord request"):
                data = await read_message(stream, self.config.max_message_size)
            req = self.codec.decode_request(data)
            peer = stream.remote_peer
            if req.sender_addrs:
                self.host.peerstore.add_addrs(peer, req.sender_addrs)
            self._dead.pop(peer, None)  # it is talking to us: alive
            resp = await self._answer(peer, req)
            if self.ready and peer not in self.ring:
                # Every caller is a ring member asking for something: the implicit
                # notify (after answering: a joining node asks where *it* belongs).
                self._apply(self.ring.offer([(self.position_of(peer), peer)]))
            self._heard(peer)
            await stream.write(encode_length_prefixed(self.codec.encode_response(resp)))
        finally:
            self._inbound -= 1

    async def _answer(self, peer: PeerId, req: Request) -> Response:
        ring = self.ring
        kind = req.type
        if kind is RequestType.PING or kind is RequestType.NOTIFY:
            return Response()
        if kind is RequestType.GET_SUCC_AND_PRED:
            return Response(
                successors=tuple(self._info(p) for p in ring.successors()),
                predecessors=tuple(self._info(p) for p in ring.predecessors()),
            )
        if kind is RequestType.GET_FINGERS:
            return Response(fingers=tuple(self._info(p) for _, p in ring.distinct_fingers()))
        # FIND_SUCCESSORS
        if not self.ready:
            return Response(status=Status.NOT_READY)
        count = max(1, min(req.count, self.config.max_nodes_per_message))
        position = key_to_int(req.key)
        if ring.is_responsible(position):
            # Only the owner answers: a node that merely vouches for another as the
            # owner may be stale (a node joined in between); sending the request
            # there costs one hop and lets the owner check for itself.
            run = ring.owner_run(position, count) or [self.host.peer_id]
            return Response(successors=tuple(self._info(p) for p in run))
        if req.ttl == 0:
            return Response(status=Status.FAILED)
        forward = Request(type=kind, key=req.key, count=count, ttl=req.ttl - 1)
        hops = ring.next_hops(
            position, self.priority, exclude=(peer,), limit=self.config.lookup_attempts
        )
        not_ready = False
        for hop in hops:
            try:
                resp = await self._call(hop, forward, self.config.rpc_timeout)
            except _FAILURES as exc:
                log.debug("chord: forwarding lookup to %s failed: %s", hop, exc)
                if isinstance(exc, ConnectionLost | ClosedError) and hop in self.ring:
                    self._drop(hop)
                continue
            if resp.status is Status.OK and resp.successors:
                self._heard(hop)
                return Response(
                    successors=resp.successors,
                    hops=resp.hops + 1,
                    approximate=resp.approximate,
                )
            not_ready = not_ready or resp.status is Status.NOT_READY
        # The owner is still joining (others join at the same time) or unreachable:
        # answer from our lists, marked as a guess (the asker records no claims).
        guess = ring.owner_run(position, count) if not_ready else None
        if guess is None:
            guess = ring.guess_run(position, count)
        return Response(successors=tuple(self._info(p) for p in guess), approximate=True)

    # ------------------------------------------------------------------ join
    async def join(self, bootstrap: Sequence[PeerId]) -> None:
        """Find our successors through any bootstrap peer, connect, check in, become ready.

        With no bootstrap peer (and no :attr:`bootstrap_addrs`) we are the first
        node: a ring of one. Raises :class:`LookupFailed` after ``join_attempts``
        rounds without an answer; the maintenance task then keeps retrying, also
        dialling :attr:`bootstrap_addrs` again, so that a node whose bootstrap
        peer was busy or down does not start a ring of its own.
        """
        me = self.host.peer_id
        peers = [p for p in dict.fromkeys(bootstrap) if p != me]
        self._bootstrap = list(dict.fromkeys([*self._bootstrap, *peers]))
        if not self._bootstrap and not self.bootstrap_addrs:
            self.ready = True
            return
        if not peers:
            raise LookupFailed("no bootstrap peer reachable")
        self._joining = True
        try:
            await self._join(peers)
        finally:
            self._joining = False

    async def _rejoin(self) -> None:
        """Retry joining: the bootstrap peers we know, and the configured addresses redialled."""
        peers = list(self._bootstrap)
        for addr in self.bootstrap_addrs:
            try:
                peers.append(await self.host.connect(addr))
            except (PeerwireError, OSError) as exc:
                log.debug("chord: bootstrap %s unreachable: %s", addr, exc)
        await self.join(peers)

    async def _join(self, peers: list[PeerId]) -> None:
        errors: list[str] = []
        for attempt in range(self.config.join_attempts):
            if attempt:
                await asyncio.sleep(self.plan.next_delay())
            for peer in peers:
                if not await self._dial(peer):
                    errors.append(f"{peer}: unreachable")
                    continue
                # The owner of the key just after ours is our successor, whether or
                # not the ring already knows us.
                after = self.position + 1
                try:
                    found, guess = await self.lookup_answer(
                        int_to_key(after), self.config.max_successors, via=peer
                    )
                except LookupFailed as exc:
                    errors.append(str(exc))
                    continue
                await self._adopt([*found, NodeInfo(peer)])
                if not guess:
                    self.ring.record_run(after, [i.peer_id for i in found])
                if self.ring.successor is None:
                    errors.append(f"{peer}: no reachable successor among the answer")
                    continue
                await self._check(first=True)
                await self._check(first=False)
                await self._notify_lists()
                self.ready = True
                self._bootstrap = []
                log.info("joined the chord ring through %s: %d neighbours", peer, len(self.ring))
                return
        raise LookupFailed("could not join the chord ring: " + "; ".join(errors[-4:]))

    async def _notify_lists(self) -> None:
        peers = list(dict.fromkeys([*self.ring.successors(), *self.ring.predecessors()]))
        step = self.config.max_concurrent_dials
        for i in range(0, len(peers), step):
            await asyncio.gather(
                *(self._direct(p, RequestType.NOTIFY) for p in peers[i : i + step])
            )

    # --------------------------------------------------------- stabilisation
    async def maintain(self) -> None:
        """One stabilisation round (see :mod:`.stabilize`)."""
        async with self._lock:
            await self._check(first=True)
            await self._extend_successors()
            await self._check(first=False)
            await self._refresh_fingers()
            now = asyncio.get_running_loop().time()
            probes = self.plan.probes(self.ring, now)
            if probes:
                await asyncio.gather(*(self._direct(p, RequestType.PING) for p in probes))
            if self.plan.self_check_due():
                await self._self_check()
            self._prune(asyncio.get_running_loop().time())

    async def _self_check(self) -> None:
        """Look up our own successor through a random connected peer (see ``self_check_every``).

        The answer travels that peer's routes, not ours: in a ring split into
        interleaved cycles it names a successor of ours from the other cycle,
        which the lists then take (it is closer), and the cycles merge.
        """
        me = self.host.peer_id
        via = self.plan.pick([p for p in self.host.connected_peers() if p != me])
        if via is None:
            return
        try:
            found = await self.lookup(int_to_key(self.position + 1), 2, via=via)
        except LookupFailed as exc:
            log.debug("chord: self check through %s failed: %s", via, exc)
            return
        await self._adopt(found)

    async def _check(self, *, first: bool) -> None:
        """Ask our successor (or predecessor) for its lists; fall back past failed ones."""
        for _ in range(3):
            peer = self.ring.successor if first else self.ring.predecessor
            if peer is None:
                return
            resp = await self._direct(peer, RequestType.GET_SUCC_AND_PRED)
            if resp is not None:
                await self._adopt([*resp.successors, *resp.predecessors])
                if first:
                    run = [peer, *(i.peer_id for i in resp.successors)]
                    self.ring.record_run(self.position + 1, run)
                else:
                    self.ring.record_predecessors([peer, *(i.peer_id for i in resp.predecessors)])
                return
            if peer in self.ring:
                return  # a timeout it is allowed: ask again next round

    async def _extend_successors(self) -> None:
        """Ask the last vouched-for successor for its successors, if the list runs past it.

        Our successor's answer vouches for as many successors as its own list
        holds; when ours is longer, this grows the vouched run by one answer
        per round, so the whole successor list becomes the true one.
        """
        ring = self.ring
        chain = ring.vouched_successors()
        successors = ring.successors()
        if chain < 2 or chain >= len(successors):
            return
        tail = successors[chain - 1]
        resp = await self._direct(tail, RequestType.GET_SUCC_AND_PRED)
        if resp is not None and tail in ring:
            await self._adopt(resp.successors)
            ring.record_run(self.position_of(tail) + 1, [i.peer_id for i in resp.successors])

    async def _refresh_fingers(self) -> None:
        k = self.config.finger_successors
        for _ in range(self.config.finger_lookups_per_round):
            index = self.plan.next_finger(self.ring)
            if index is None:
                return
            start = finger_start(self.position, index)
            try:
                found, guess = await self.lookup_answer(int_to_key(start), k)
            except LookupFailed as exc:
                log.debug("chord: finger %d lookup failed: %s", index, exc)
                self.plan.finger_done(index, None)
                continue
            await self._adopt(found)
            if guess:
                self.plan.finger_done(index, None)
                continue
            self.ring.record_run(start, [info.peer_id for info in found])
            first = found[0].peer_id
            if first == self.host.peer_id:
                # The start is ours, and so is every higher one: the sweep wraps round.
                distance = RING_SIZE
            else:
                distance = clockwise(self.position, self.position_of(first))
            self.plan.finger_done(index, distance)
            # Nodes we keep between the start and the owner the ring named are
            # contradicted (crashed, most likely): ask them now, drop the silent.
            doubted = self.ring.between(1 << index, min(distance, RING_SIZE))
            if doubted:
                await asyncio.gather(*(self._confirm(p) for p in doubted[:4]))

    def _prune(self, now: float) -> None:
        """Close connections we dialled for the ring to peers that left every list.

        Conservative on purpose: only connections this overlay opened, with no
        stream open on them (nobody else is using them) and quiet for
        ``prune_after`` seconds.
        """
        for peer, until in list(self._dead.items()):
            if until <= now:
                del self._dead[peer]
        for peer in list(self._dialled):
            if peer in self.ring:
                continue
            conn = self.host.connection(peer)
            if conn is None or not conn.raw.is_initiator:
                self._dialled.discard(peer)
                continue
            if conn.streams or now - conn.last_activity < self.config.prune_after:
                continue
            self._dialled.discard(peer)
            log.debug("chord: closing connection to %s (in no list)", peer)
            self.host.spawn(conn.close(), name=f"chord prune {peer}")
