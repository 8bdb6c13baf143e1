"""The asyncio adapter of the Kademlia DHT: RPCs, the kad handler, lookups, upkeep.

Everything protocol-shaped lives in sans-IO cores (:mod:`.routing`,
:mod:`.lookup`, :mod:`.records`, :mod:`.messages`); this module moves bytes
and time between them and the host:

* **RPCs** open a new stream per request (as libp2p does), write one
  length-prefixed message, read one answer, close. Each is bounded by
  ``request_timeout``. A peer we have no connection to is dialled only if the
  peer store has an address for it: the DHT never asks itself (through the
  host's ``peer_router``) how to reach a peer, so it cannot recurse.
* **Serving** (:mod:`.serving`; server mode only) answers any number of requests per inbound
  stream, each within ``inbound_timeout``, at most ``max_inbound_rpcs_per_peer``
  streams per peer at once.
* **Lookups** drive a :class:`~.lookup.Lookup` with at most ``alpha`` RPC
  tasks in flight, waking on the first answer or the next request deadline.
* **Routing table upkeep**: a peer enters the table when it answers one of our
  RPCs, or when identify says it serves the kad protocol (so client-mode peers
  never do). Full buckets ping their oldest entry (libp2p ping) before
  admitting a newcomer. Peers that fail ``max_failures`` RPCs in a row leave.
* **Maintenance** runs in one task per node: sleep ``maintenance_interval``
  (jittered from the node's seeded RNG), then refresh stale buckets, expire
  records, republish ours. Time is only ever read from ``loop.time()``, so the
  simulator's virtual clock drives all of it.

Keys: the DHT API takes ``bytes`` (any length, a record/content key as the
spec defines it) or a :class:`PeerId` (its bytes). The key's position in the
XOR space is sha256 of those bytes, as in every libp2p implementation. This
differs from :func:`peerwire.overlay.key_for` only for raw 32-byte keys, which
the overlay uses as positions directly while the DHT hashes them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ..._cache import remember
from ...errors import (
    ConnectionLost,
    InvalidKeyError,
    LimitExceeded,
    PeerwireError,
    Timeout,
    UsageError,
)
from ...host.middleware import Hook
from ...identity.multiaddr import Multiaddr
from ...identity.peer_id import PeerId
from ...varint import LengthPrefixedReader, encode_length_prefixed
from ..ping import ping
from .config import KadConfig
from .errors import InvalidRecord, KadProtocolError, NotFound
from .lookup import Lookup, LookupStats
from .messages import (
    ConnectionType,
    KadMessage,
    KadPeer,
    KadRecord,
    MessageType,
    decode,
    encode,
)
from .records import PK_PREFIX, ProviderStore, RecordStore
from .routing import AddStatus, RoutingTable
from .serving import handle_stream, read_message

if TYPE_CHECKING:
    from ...host.host import Host
    from ...mux.session import MuxedConnection
    from ...mux.stream import Stream
    from ..identify import IdentifyInfo

log = logging.getLogger("peerwire.kad")

HOOK_PRIORITY = 1_000_000

ENTRY_CACHE_SIZE = 4096
"""Most answer entries a service keeps built (see ``KadService._entries``)."""
"""Our PEER_READY hook runs before user hooks (which may stop the chain); it never stops it."""

KeyLike = bytes | bytearray | PeerId


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A peer and the addresses it can be dialled at (no /p2p suffix)."""

    peer_id: PeerId
    addrs: tuple[Multiaddr, ...]


@dataclass(frozen=True, slots=True)
class LookupReport:
    """Handed to every ``lookup_listeners`` callback when a lookup ends."""

    kind: str
    """"find_peer", "get_closest_peers", "get_value", "find_providers", "bootstrap", "refresh"."""
    key: bytes
    """The wire key looked up (a PeerId's bytes for find_peer)."""
    found: bool
    """find_peer: the peer was found; get_value / find_providers: something was found;
    other kinds: at least one peer answered."""
    stats: LookupStats


@dataclass(slots=True)
class KadMetrics:
    """Running totals for one node (what the simulator reports per node)."""

    requests_sent: int = 0
    requests_failed: int = 0
    requests_received: int = 0
    lookups: int = 0
    pings: int = 0


@dataclass(slots=True)
class _Collect:
    values: list[bytes] = field(default_factory=list)
    holders: list[PeerId | None] = field(default_factory=list)


def _all_known(addrs: tuple[Multiaddr, ...], known: list[Multiaddr]) -> bool:
    """True if every one of ``addrs`` is in ``known``.

    Called for every peer of every answer; most entries carry one address,
    which a plain ``in`` checks in C (shared addresses match by identity
    first) without the generator a general ``all`` would build.
    """
    if len(addrs) == 1:
        return addrs[0] in known
    return all(a in known for a in addrs)


def _consume(task: asyncio.Task[object]) -> None:
    if not task.cancelled():
        task.exception()


def _make_rng(seed: int | None, peer: PeerId) -> random.Random:
    if seed is None:
        return random.Random(int.from_bytes(os.urandom(16), "big"))
    material = seed.to_bytes(16, "big", signed=True) + peer.to_bytes()
    return random.Random(int.from_bytes(hashlib.sha256(material).digest()[:16], "big"))


def wire_key(key: KeyLike) -> bytes:
    """The bytes a DHT key travels as (a PeerId's multihash bytes, or the bytes themselves)."""
    if isinstance(key, PeerId):
        return key.to_bytes()
    if isinstance(key, bytes | bytearray):
        if not key:
            raise UsageError("DHT keys must not be empty")
        return bytes(key)
    raise UsageError(f"DHT keys are bytes or a PeerId, not {type(key).__name__}")


class KadService:
    """One node's Kademlia DHT. ``node.dht`` is this object."""

    def __init__(self, host: Host, config: KadConfig | None = None) -> None:
        self.host = host
        self.config = cfg = config or KadConfig()
        self.peer_id = host.peer_id
        self.rng = _make_rng(cfg.seed, host.peer_id)
        self.table = RoutingTable(
            host.peer_id.to_bytes(),
            k=cfg.k,
            bucket_count=cfg.bucket_count,
            ping_after=cfg.ping_after,
            max_failures=cfg.max_failures,
            refresh_interval=cfg.refresh_interval,
            rng=self.rng,
        )
        self.records = RecordStore(
            cfg.validator,
            max_records=cfg.max_records,
            max_record_size=cfg.max_record_size,
            ttl=cfg.record_ttl,
            republish_interval=cfg.republish_interval,
        )
        self.providers = ProviderStore(
            max_keys=cfg.max_provider_keys,
            max_providers_per_key=cfg.max_providers_per_key,
            ttl=cfg.provider_ttl,
            reprovide_interval=cfg.reprovide_interval,
        )
        self.metrics = KadMetrics()
        self.lookup_listeners: list[Callable[[LookupReport], None]] = []
        """Called (synchronously) with a :class:`LookupReport` after every lookup."""
        self._mode: Literal["server", "client"] = cfg.mode
        self._inbound: dict[PeerId, int] = {}
        # Answer entries by peer: (addresses they were built from, connected?, entry).
        # A FIND_NODE answer names k peers, mostly the same ones again and again;
        # reusing the same KadPeer object means it is serialized once (it keeps its bytes).
        self._entries: dict[PeerId, tuple[list[Multiaddr], bool, KadPeer]] = {}
        self._pinging: dict[PeerId, None] = {}
        self._bootstrap_peers: list[PeerId] = []
        self._task: asyncio.Task[object] | None = None
        self._unhook: Callable[[], None] | None = None
        self._running = False

    # ------------------------------------------------------------ lifecycle
    @property
    def mode(self) -> Literal["server", "client"]:
        return self._mode

    @property
    def is_running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Serve the kad protocol (server mode), watch identify, start maintenance."""
        if self._running:
            raise UsageError("the DHT is already running")
        self._running = True
        if self._mode == "server":
            self.host.set_stream_handler(self.config.protocol, self._serve)
        self._unhook = self.host.middleware.use(Hook.PEER_READY, self._on_peer_ready, HOOK_PRIORITY)
        if self.host.peer_router is None:
            self.host.peer_router = self.find_addrs
        self._task = self.host.spawn(self._maintenance_loop(), name="kad maintenance")

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._unhook is not None:
            self._unhook()
            self._unhook = None
        if self.host.peer_router == self.find_addrs:
            self.host.peer_router = None
        # The kad handler stays until the host stops (the Overlay contract): removing
        # it here would make identify push a new protocol list to every peer just
        # before the connections close.

    def set_mode(self, mode: Literal["server", "client"]) -> None:
        """Switch between serving the DHT (server) and only using it (client)."""
        if mode not in ("server", "client"):
            raise UsageError(f"mode must be 'server' or 'client', not {mode!r}")
        self._mode = mode
        if self._running:
            if mode == "server":
                self.host.set_stream_handler(self.config.protocol, self._serve)
            else:
                self.host.remove_stream_handler(self.config.protocol)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _serve(self, stream: Stream) -> None:
        await handle_stream(self, stream)

    # ---------------------------------------------------------- joining
    async def bootstrap(self, peers: Sequence[PeerId] = ()) -> None:
        """Join: look ourselves up through ``peers`` (and the table), then refresh
        every non-empty bucket. Failures are logged; the table may stay empty."""
        self._bootstrap_peers = [p for p in peers if p != self.peer_id]
        own = self.peer_id.to_bytes()
        await self._lookup("bootstrap", own, self._find_node(own), seeds=self._bootstrap_peers)
        keys = self.table.buckets_needing_refresh(self._now(), interval=0.0, non_empty_only=True)
        await self._refresh_keys([key for key in keys if key != own])
        if self._bootstrap_peers and not len(self.table):
            log.warning("kad bootstrap of %s found no peers", self.peer_id)

    async def refresh(self) -> int:
        """Refresh every bucket no lookup went through for ``refresh_interval`` (every
        bucket if it is 0) with a lookup of a random key in it; returns how many ran."""
        keys = self.table.buckets_needing_refresh(self._now())
        await self._refresh_keys(keys)
        return len(keys)

    async def _refresh_keys(self, keys: Sequence[bytes]) -> None:
        if keys:
            await asyncio.gather(*(self._lookup("refresh", k, self._find_node(k)) for k in keys))

    async def maintain(self) -> None:
        """One maintenance round: expire, refresh stale buckets (or re-bootstrap an
        empty table), republish our records, reprovide our keys."""
        now = self._now()
        self.records.expire(now)
        self.providers.expire(now)
        if not len(self.table) and self._bootstrap_peers:
            await self.bootstrap(self._bootstrap_peers)
        elif self.config.refresh_interval > 0 and len(self.table):
            await self.refresh()
        for key, value in self.records.due_republish(now):
            self.records.mark_republished(key, now)
            self.records.put(key, value, now, replace=True)
            await self._store_remote(key, value)
        for key in self.providers.due_reprovide(now):
            self.providers.mark_reprovided(key, now)
            self.providers.add(key, self.peer_id, now)
            await self._announce(key)

    async def _maintenance_loop(self) -> None:
        cfg = self.config
        while True:
            spread = cfg.jitter * (2.0 * self.rng.random() - 1.0)
            await asyncio.sleep(cfg.maintenance_interval * (1.0 + spread))
            try:
                await self.maintain()
            except PeerwireError as exc:
                log.info("kad maintenance round failed: %s: %s", type(exc).__name__, exc)

    # ------------------------------------------------------- routing table
    def _seen(self, peer: PeerId) -> None:
        if peer == self.peer_id:
            return
        result = self.table.add(peer, self._now())
        if result.status is AddStatus.PENDING and result.ping is not None:
            oldest = result.ping
            if len(self._pinging) >= self.config.max_pending_pings or oldest in self._pinging:
                self.table.ping_result(oldest, True, self._now())  # cannot check: keep it
                return
            self._pinging[oldest] = None
            self.host.spawn(self._check_alive(oldest), name=f"kad ping {oldest}")

    async def _check_alive(self, peer: PeerId) -> None:
        self.metrics.pings += 1
        try:
            async with asyncio.timeout(self.config.request_timeout):
                await self._connect(peer)
                await ping(self.host, peer)
            alive = True
        except (PeerwireError, OSError, TimeoutError) as exc:
            log.debug("kad: %s failed its liveness ping: %s", peer, exc)
            alive = False
        finally:
            self._pinging.pop(peer, None)
        if self._running:
            self.table.ping_result(peer, alive, self._now())

    def _on_peer_ready(self, conn: MuxedConnection, info: IdentifyInfo) -> None:
        if self._running and self.config.protocol in info.protocols:
            self._seen(conn.remote_peer)

    def _failed(self, peer: PeerId, exc: BaseException) -> None:
        self.metrics.requests_failed += 1
        if isinstance(exc, LimitExceeded):
            return  # our own limit, not the peer's fault
        if not isinstance(exc, PeerwireError | OSError | TimeoutError):
            log.error("kad request to %s failed unexpectedly", peer, exc_info=exc)
        if self.table.failed(peer):
            log.debug("kad: dropped %s from the routing table after failures", peer)

    def _learn(self, peers: Iterable[KadPeer], *, keep_unreachable: bool = False) -> list[PeerId]:
        """Store announced addresses; return the peers we could contact."""
        store = self.host.peerstore
        out: list[PeerId] = []
        for entry in peers:
            peer = entry.peer_id
            if peer == self.peer_id:
                if keep_unreachable:
                    out.append(peer)
                continue
            addrs = entry.addrs
            if addrs:
                known = store.get(peer)
                if known is None or not _all_known(addrs, known.addrs):
                    store.add_addrs(peer, addrs)
            elif (
                not keep_unreachable
                and self.host.connection(peer) is None
                and not store.addrs(peer)
            ):
                continue
            out.append(peer)
        return out

    def _own_addrs(self) -> tuple[Multiaddr, ...]:
        extra = [Multiaddr(a) for a in self.host.config.extra_listen_announce]
        return tuple(self.host.listen_addrs + extra)

    def _peer_entry(self, peer: PeerId) -> KadPeer:
        if peer == self.peer_id:
            return KadPeer(peer, self._own_addrs(), ConnectionType.CONNECTED)
        return self._other_entry(peer)

    def _other_entry(self, peer: PeerId) -> KadPeer:
        """The answer entry for ``peer``, which is not us (table peers never are)."""
        known = self.host.peerstore.get(peer)
        addrs = known.addrs if known is not None else []
        connected = self.host.connection(peer) is not None
        cached = self._entries.get(peer)
        # List equality checks identity first: unchanged addresses compare in C.
        if cached is not None and cached[1] is connected and cached[0] == addrs:
            return cached[2]
        entry = KadPeer(
            peer,
            tuple(addrs),
            ConnectionType.CONNECTED if connected else ConnectionType.NOT_CONNECTED,
        )
        remember(self._entries, peer, (list(addrs), connected, entry), ENTRY_CACHE_SIZE)
        return entry

    def _closer(self, key: bytes, requester: PeerId | None) -> tuple[KadPeer, ...]:
        target = hashlib.sha256(key).digest()
        exclude = (requester,) if requester is not None else ()
        entry = self._other_entry
        out = [entry(p) for p in self.table.closest(target, exclude=exclude)]
        if key == self.peer_id.to_bytes():
            out.insert(0, self._peer_entry(self.peer_id))
        return tuple([e for e in out if e.addrs])

    # ----------------------------------------------------------------- RPCs
    async def _connect(self, peer: PeerId) -> MuxedConnection:
        conn = self.host.connection(peer)
        if conn is not None:
            return conn
        if not self.host.peerstore.addrs(peer):
            raise ConnectionLost(f"no known address for {peer}")
        return await self.host.connect_peer(peer)

    async def _rpc(self, peer: PeerId, request: KadMessage, *, reply: bool = True) -> KadMessage:
        """Send ``request`` to ``peer``; its answer (``request`` itself when none is expected)."""
        cfg = self.config
        self.metrics.requests_sent += 1
        try:
            async with asyncio.timeout(cfg.request_timeout):
                conn = await self._connect(peer)
                # A request expecting an answer goes out lazily with its FIN: proposal,
                # request and half-close in one write, echo + answer + FIN back in
                # one (a refusal still fails the read). One round trip per RPC.
                stream = await self.host.new_stream(peer, cfg.protocol, conn=conn, lazy=reply)
                try:
                    await stream.write(encode_length_prefixed(encode(request)))
                    if not reply:
                        await stream.close()
                        return request
                    await stream.close_write()
                    reader = LengthPrefixedReader(cfg.max_message_size)
                    body = await read_message(stream, reader)
                except BaseException:
                    stream.reset_nowait()
                    raise
                await stream.close()
        except TimeoutError as exc:
            if isinstance(exc, Timeout):
                raise
            raise Timeout(f"kad {request.type.name} to {peer} timed out") from exc
        if body is None:
            raise KadProtocolError(f"{peer} closed the stream without answering")
        answer = decode(body, max_peers=cfg.max_peers_per_message)
        if answer.type is not request.type:
            raise KadProtocolError(f"{peer} answered {request.type.name} with {answer.type.name}")
        return answer

    async def _rpc_many(self, peers: Sequence[PeerId], request: KadMessage, reply: bool) -> int:
        """Send ``request`` to every peer at once; how many succeeded."""
        results = await asyncio.gather(
            *(self._rpc(p, request, reply=reply) for p in peers), return_exceptions=True
        )
        ok = 0
        for peer, result in zip(peers, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                self._failed(peer, result)
            else:
                self._seen(peer)
                ok += 1
        return ok

    def _find_node(self, key: bytes) -> KadMessage:
        return KadMessage(MessageType.FIND_NODE, key=key)

    # -------------------------------------------------------------- lookups
    async def _lookup(
        self,
        kind: str,
        key: bytes,
        request: KadMessage,
        *,
        on_answer: Callable[[PeerId, KadMessage], bool] | None = None,
        seeds: Sequence[PeerId] = (),
        found: Callable[[], bool] | None = None,
    ) -> Lookup:
        """Run one iterative lookup of ``key``; ``on_answer`` returning True ends it early."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        target = hashlib.sha256(key).digest()
        start = loop.time()
        lookup = Lookup(
            target,
            [*seeds, *self.table.closest(target)],
            now=start,
            k=cfg.k,
            alpha=cfg.alpha,
            timeout=cfg.request_timeout,
            local=self.peer_id,
        )
        self.table.mark_refreshed(target, start)
        end = start + cfg.lookup_timeout
        tasks: dict[asyncio.Task[KadMessage], PeerId] = {}
        try:
            while True:
                now = loop.time()
                if now >= end:
                    lookup.finish(now)
                    break
                for peer in lookup.next_requests(now):
                    task = asyncio.ensure_future(self._rpc(peer, request))
                    task.add_done_callback(_consume)
                    tasks[task] = peer
                if lookup.finished or not tasks:
                    lookup.finish(now)
                    break
                wake = lookup.next_deadline()
                timeout = (end if wake is None else min(wake, end)) - now
                done, _ = await asyncio.wait(
                    tasks, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED
                )
                now = loop.time()
                for task in [t for t in tasks if t in done]:  # creation order: deterministic
                    peer = tasks.pop(task)
                    exc = task.exception() if not task.cancelled() else ConnectionLost("cancelled")
                    if exc is not None:
                        lookup.on_failure(peer, now)
                        self._failed(peer, exc)
                        continue
                    answer = task.result()
                    self._seen(peer)
                    lookup.on_success(peer, self._learn(answer.closer), now)
                    if on_answer is not None and on_answer(peer, answer):
                        lookup.finish(now)
                if lookup.finished:
                    break
        finally:
            for task in tasks:
                task.cancel()
        self.metrics.lookups += 1
        if self.lookup_listeners:
            stats = lookup.stats()
            ok = found() if found is not None else stats.responses > 0
            report = LookupReport(kind, key, ok, stats)
            for listener in list(self.lookup_listeners):
                try:
                    listener(report)
                except Exception:
                    log.exception("kad lookup listener failed")
        return lookup

    # ------------------------------------------------------------ DHT API
    async def find_peer(self, peer: PeerId | str) -> PeerInfo:
        """Where ``peer`` can be reached; :class:`NotFound` if no lookup answer names it.

        Answers at once when we are connected to ``peer``. Otherwise a FIND_NODE
        lookup runs until some peer names it with addresses (or it answers us
        itself), as js-libp2p does; the addresses are not dialled to check them.
        """
        target = PeerId.from_string(peer) if isinstance(peer, str) else peer
        if target == self.peer_id:
            return PeerInfo(target, self._own_addrs())
        known = self.host.peerstore.addrs(target)
        if self.host.connection(target) is not None and known:
            return PeerInfo(target, tuple(known))
        hit: list[bool] = []

        def on_answer(responder: PeerId, answer: KadMessage) -> bool:
            if responder == target or any(p.peer_id == target and p.addrs for p in answer.closer):
                hit.append(True)
            return bool(hit)

        key = target.to_bytes()
        await self._lookup(
            "find_peer", key, self._find_node(key), on_answer=on_answer, found=lambda: bool(hit)
        )
        addrs = self.host.peerstore.addrs(target)
        if not hit or not addrs:
            raise NotFound(f"peer {target} not found in the DHT")
        return PeerInfo(target, tuple(addrs))

    async def find_addrs(self, peer: PeerId) -> list[Multiaddr]:
        """The host's ``peer_router``: addresses for a peer we know none for ([] if not found)."""
        if not self._running:
            return []
        try:
            return list((await self.find_peer(peer)).addrs)
        except PeerwireError as exc:
            log.info("kad could not find %s: %s", peer, exc)
            return []

    async def get_closest_peers(self, key: KeyLike) -> list[PeerId]:
        """The ``k`` peers nearest to ``key`` that answered us, nearest first."""
        wire = wire_key(key)
        lookup = await self._lookup("get_closest_peers", wire, self._find_node(wire))
        return lookup.closest()

    async def put_value(self, key: KeyLike, value: bytes) -> int:
        """Store ``value`` under ``key`` here and on the ``k`` nearest peers; republished
        every ``republish_interval``. Returns how many peers accepted it."""
        wire = wire_key(key)
        value = bytes(value)
        try:
            self.records.check(wire, value)
        except InvalidRecord as exc:
            raise UsageError(f"invalid DHT record: {exc}") from exc
        now = self._now()
        self.records.publish(wire, value, now)
        self.records.put(wire, value, now, replace=True)
        return await self._store_remote(wire, value)

    async def _store_remote(self, wire: bytes, value: bytes) -> int:
        peers = await self.get_closest_peers(wire)
        request = KadMessage(MessageType.PUT_VALUE, key=wire, record=KadRecord(wire, value))
        return await self._rpc_many(peers, request, reply=True)

    async def get_value(self, key: KeyLike, *, quorum: int | None = None) -> bytes:
        """The best value stored under ``key`` (see ``KadConfig.value_quorum``).

        Raises :class:`NotFound` if no peer (and not our own store) has one."""
        wire = wire_key(key)
        want = self.config.value_quorum if quorum is None else quorum
        if want < 1:
            raise UsageError("quorum must be >= 1")
        got = _Collect()
        local = self._local_record(wire, self._now())
        if local is not None:
            got.values.append(local.value)
            got.holders.append(None)
            if want <= 1:
                return local.value

        def on_answer(peer: PeerId, answer: KadMessage) -> bool:
            record = answer.record
            if record is None or record.key != wire:
                return False
            try:
                self.records.check(wire, record.value)
            except InvalidRecord as exc:
                log.info("kad: %s returned an invalid record: %s", peer, exc)
                return False
            got.values.append(record.value)
            got.holders.append(peer)
            return len(got.values) >= want

        request = KadMessage(MessageType.GET_VALUE, key=wire)
        await self._lookup(
            "get_value", wire, request, on_answer=on_answer, found=lambda: bool(got.values)
        )
        if not got.values:
            raise NotFound(f"no value for key {wire!r} in the DHT")
        best = got.values[self.records.select(wire, got.values)]
        stale = [p for p, v in zip(got.holders, got.values, strict=True) if p and v != best]
        if stale:
            fix = KadMessage(MessageType.PUT_VALUE, key=wire, record=KadRecord(wire, best))
            self.host.spawn(self._rpc_many(stale, fix, True), name="kad record correction")
        return best

    def _local_record(self, key: bytes, now: float) -> KadRecord | None:
        if key.startswith(PK_PREFIX):
            try:
                owner = PeerId.from_bytes(key[len(PK_PREFIX) :])
            except InvalidKeyError:
                owner = None
            if owner == self.peer_id:
                return KadRecord(key, self.host.identity.public_key.to_protobuf())
            peer_rec = self.host.peerstore.get(owner) if owner is not None else None
            if peer_rec is not None and peer_rec.public_key is not None:
                return KadRecord(key, peer_rec.public_key.to_protobuf())
        stored = self.records.get(key, now)
        return KadRecord(key, stored.value) if stored is not None else None

    async def provide(self, key: KeyLike) -> int:
        """Announce that we provide ``key`` to the ``k`` nearest peers (re-announced every
        ``reprovide_interval``). Returns how many peers were told."""
        wire = wire_key(key)
        now = self._now()
        self.providers.start_providing(wire, now)
        self.providers.add(wire, self.peer_id, now)
        return await self._announce(wire)

    async def _announce(self, wire: bytes) -> int:
        peers = await self.get_closest_peers(wire)
        request = KadMessage(
            MessageType.ADD_PROVIDER, key=wire, providers=(self._peer_entry(self.peer_id),)
        )
        return await self._rpc_many(peers, request, reply=False)

    async def find_providers(self, key: KeyLike, *, count: int | None = None) -> list[PeerInfo]:
        """Up to ``count`` (default k) providers of ``key``, ours first; [] if none."""
        wire = wire_key(key)
        want = self.config.k if count is None else count
        found: dict[PeerId, None] = dict.fromkeys(self.providers.get(wire, self._now()))

        def on_answer(peer: PeerId, answer: KadMessage) -> bool:
            for provider in self._learn(answer.providers, keep_unreachable=True):
                found.setdefault(provider)
            return len(found) >= want

        if len(found) < want:
            request = KadMessage(MessageType.GET_PROVIDERS, key=wire)
            await self._lookup(
                "find_providers", wire, request, on_answer=on_answer, found=lambda: bool(found)
            )
        return [self._info(p) for p in list(found)[:want]]

    def _info(self, peer: PeerId) -> PeerInfo:
        if peer == self.peer_id:
            return PeerInfo(peer, self._own_addrs())
        return PeerInfo(peer, tuple(self.host.peerstore.addrs(peer)))
