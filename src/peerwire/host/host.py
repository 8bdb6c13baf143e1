"""The host: transports, the connection pool, and protocol streams.

The host owns every connection. It keeps at most one connection per peer:
when both sides dial each other at once, both end up keeping the connection
dialled by the peer with the smaller PeerId and retire the other gracefully
(its open streams finish; no new ones start on it). Inbound streams are
negotiated with multistream-select and handed to the handler registered for
their protocol.

Failures caused by a remote (bad handshake, garbage, wrong key, unknown
protocol, stalls) close only that connection or stream and are logged; the
host keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from .._timeouts import deadline
from ..config import Config
from ..errors import (
    ClosedError,
    ConnectionLost,
    LimitExceeded,
    NegotiationError,
    PeerwireError,
    ProtocolError,
    Timeout,
    UsageError,
    Vetoed,
)
from ..identity.identity import Identity
from ..identity.multiaddr import Multiaddr
from ..identity.peer_id import PeerId
from ..mux.session import MuxedConnection
from ..mux.stream import Stream
from ..negotiate.multistream import MultistreamDialer, MultistreamListener
from ..transport.base import Listener, RawConnection, Transport
from .middleware import Hook, Middleware
from .peerstore import PeerStore
from .upgrade import negotiate, upgrade

log = logging.getLogger("peerwire.host")

StreamHandler = Callable[[Stream], Awaitable[None]]
ConnectionCallback = Callable[[MuxedConnection], None]
PeerRouter = Callable[[PeerId], Awaitable[Sequence[Multiaddr]]]
"""Finds addresses for a peer the peer store knows none for (e.g. a DHT lookup)."""

RETIRE_GRACE = 10.0
"""Seconds a retired duplicate connection may keep its open streams before it is closed."""
HOOK_DRAIN_TIMEOUT = 5.0
"""Seconds ``stop`` waits for PEER_DISCONNECTED hooks still running before cancelling them."""
NEGOTIATION_READ_SIZE = 4096
IDLE_REAP_LATENESS = 5.0
"""Most seconds an idle connection stays open past ``Config.idle_timeout`` (a quarter
of the timeout if that is shorter): the reaper never sleeps less than this."""


def _default_transports(config: Config) -> list[Transport]:
    from ..transport.memory import MemoryTransport
    from ..transport.tcp import TcpTransport

    return [TcpTransport(dial_timeout=config.dial_timeout), MemoryTransport()]


class Host:
    """Connections, streams and handlers for one identity. :class:`peerwire.Node` wraps it."""

    def __init__(
        self,
        identity: Identity,
        config: Config | None = None,
        *,
        transports: Sequence[Transport] | None = None,
        middleware: Middleware | None = None,
    ) -> None:
        self.identity = identity
        self.middleware = middleware if middleware is not None else Middleware()
        """Hook chains (see :mod:`peerwire.host.middleware`); shared with the Node."""
        self.config = config or Config()
        self.transports: list[Transport] = (
            list(transports) if transports is not None else _default_transports(self.config)
        )
        self.peerstore = PeerStore()
        self._handlers: dict[str, StreamHandler] = {}
        self._conns: dict[PeerId, MuxedConnection] = {}
        # Insertion-ordered (a dict, not a set): closing, reaping and promotion
        # then happen in the same order every run, which the simulator's
        # determinism relies on. ``_peer_conns`` indexes the same connections by peer.
        self._all_conns: dict[MuxedConnection, None] = {}
        self._peer_conns: dict[PeerId, list[MuxedConnection]] = {}
        self._dialing: dict[PeerId, asyncio.Future[MuxedConnection]] = {}
        self._listeners: list[Listener] = []
        self._pending_handshakes = 0
        self._negotiating: dict[MuxedConnection, int] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self._hook_tasks: set[asyncio.Task[object]] = set()
        self._running = False
        self._stopping = False
        self._reaper: asyncio.Task[None] | None = None
        self.connection_callbacks: list[ConnectionCallback] = []
        """Called for every new primary connection (after the upgrade)."""
        self.disconnection_callbacks: list[ConnectionCallback] = []
        """Called when a peer's primary connection closes."""
        self.handlers_changed_callbacks: list[Callable[[], None]] = []
        self.peer_router: PeerRouter | None = None
        """Asked by :meth:`connect_peer` for the addresses of a peer we have no address
        for; the overlay (Kademlia, Chord) installs itself here. Must bound its own running time."""

    # ----------------------------------------------------------- properties
    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    @property
    def listen_addrs(self) -> list[Multiaddr]:
        """Bound addresses, without the /p2p suffix."""
        return [addr for listener in self._listeners for addr in listener.addrs]

    @property
    def addrs(self) -> list[Multiaddr]:
        """Bound addresses, each ending in /p2p/<our peer id>."""
        return [addr.with_peer_id(self.peer_id) for addr in self.listen_addrs]

    @property
    def is_running(self) -> bool:
        return self._running

    def protocols(self) -> list[str]:
        return sorted(self._handlers)

    def connection(self, peer: PeerId) -> MuxedConnection | None:
        conn = self._conns.get(peer)
        return conn if conn is not None and not conn.is_closed else None

    def connected_peers(self) -> list[PeerId]:
        return [peer for peer, conn in self._conns.items() if not conn.is_closed]

    def connections(self) -> list[MuxedConnection]:
        return [conn for conn in self._all_conns if not conn.is_closed]

    # ------------------------------------------------------------- handlers
    def set_stream_handler(self, protocol: str, handler: StreamHandler) -> None:
        if not protocol or "\n" in protocol:
            raise UsageError(f"invalid protocol id {protocol!r}")
        self._handlers[protocol] = handler
        self._handlers_changed()

    def remove_stream_handler(self, protocol: str) -> None:
        if self._handlers.pop(protocol, None) is not None:
            self._handlers_changed()

    def _handlers_changed(self) -> None:
        if not self._running:
            return
        for callback in self.handlers_changed_callbacks:
            callback()

    # ------------------------------------------------------------ lifecycle
    async def start(self, listen: Iterable[Multiaddr | str] = ()) -> None:
        if self._running:
            raise UsageError("host already started")
        self._running = True
        self._stopping = False
        try:
            for addr in listen:
                await self.listen(Multiaddr(addr) if isinstance(addr, str) else addr)
        except BaseException:
            await self.stop()
            raise
        if self.config.idle_timeout > 0:
            self._reaper = asyncio.get_running_loop().create_task(self._reap_idle())

    async def listen(self, addr: Multiaddr) -> list[Multiaddr]:
        transport = self._transport_for(addr, listen=True)
        listener = await transport.listen(addr, self._on_raw_connection)
        self._listeners.append(listener)
        log.info("listening on %s", ", ".join(map(str, listener.addrs)))
        return listener.addrs

    async def stop(self) -> None:
        """Stop listening, close every connection gracefully and end handler tasks."""
        if not self._running:
            return
        self._stopping = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for listener in self._listeners:
            try:
                await listener.close()
            except Exception:
                log.exception("closing listener failed")
        self._listeners.clear()
        for fut in self._dialing.values():
            fut.cancel()
        conns = list(self._all_conns)
        if conns:
            try:
                async with asyncio.timeout(5.0):
                    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
            except TimeoutError:
                for conn in conns:
                    conn.abort()
        # Let PEER_DISCONNECTED hooks for the connections just closed run (bounded).
        hooks = [t for t in self._hook_tasks if not t.done()]
        if hooks:
            await asyncio.wait(hooks, timeout=HOOK_DRAIN_TIMEOUT)
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        self._running = False

    def spawn(self, coro: Awaitable[object], name: str | None = None) -> asyncio.Task[object]:
        """Run a background task owned by the host (cancelled at stop, errors logged)."""
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("background task %s failed", task.get_name(), exc_info=exc)

    # --------------------------------------------------------------- dialing
    def _transport_for(self, addr: Multiaddr, *, listen: bool = False) -> Transport:
        for transport in self.transports:
            if transport.can_listen(addr) if listen else transport.can_dial(addr):
                return transport
        raise UsageError(f"no transport for {addr}")

    async def connect(self, addr: Multiaddr | str) -> PeerId:
        """Connect to ``addr``; if it ends in /p2p/<id>, the handshake must prove that id."""
        ma = Multiaddr(addr) if isinstance(addr, str) else addr
        expected = ma.peer_id
        if expected is not None:
            if expected == self.peer_id:
                raise UsageError("cannot connect to ourselves")
            existing = self.connection(expected)
            if existing is not None:
                return expected
            self.peerstore.add_addrs(expected, [ma])
            return (await self._dial_deduplicated(expected, [ma])).remote_peer
        conn = await self._dial_addr(ma, None)
        return conn.remote_peer

    async def connect_peer(self, peer: PeerId) -> MuxedConnection:
        """The connection to ``peer``, dialling its known addresses if needed."""
        conn = self.connection(peer)
        if conn is not None:
            return conn
        addrs = self.peerstore.addrs(peer)
        if not addrs and self.peer_router is not None:
            found = await self.peer_router(peer)
            if found:
                self.peerstore.add_addrs(peer, found)
                addrs = self.peerstore.addrs(peer)
        if not addrs:
            raise ConnectionLost(f"not connected to {peer} and no known address")
        return await self._dial_deduplicated(peer, addrs)

    async def _dial_deduplicated(self, peer: PeerId, addrs: list[Multiaddr]) -> MuxedConnection:
        pending = self._dialing.get(peer)
        if pending is None:
            pending = asyncio.ensure_future(self._dial_any(peer, addrs))
            self._dialing[peer] = pending
            pending.add_done_callback(lambda f: self._dialing.pop(peer, None))
            # Mark a failed dial's exception as retrieved even if every waiter went away.
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.shield(pending)

    async def _dial_any(self, peer: PeerId, addrs: list[Multiaddr]) -> MuxedConnection:
        errors: list[str] = []
        last: BaseException | None = None
        vetoed = 0
        for addr in addrs:
            try:
                return await self._dial_addr(addr, peer)
            except Vetoed as exc:
                if exc.hook is not Hook.WILL_DIAL:
                    raise  # the peer itself was refused, not one of its addresses
                errors.append(f"{addr}: {exc}")
                last = exc
                vetoed += 1
            except (ProtocolError, ConnectionLost, Timeout, UsageError) as exc:
                existing = self.connection(peer)
                if existing is not None:
                    # Lost a simultaneous-dial race: the remote closed our connection
                    # during its upgrade to keep the one it dialled, registered here by now.
                    return existing
                errors.append(f"{addr}: {exc}")
                last = exc
        if len(errors) == 1 and last is not None:
            raise last
        if vetoed and vetoed == len(errors):
            raise Vetoed(f"every dial to {peer} was vetoed: " + "; ".join(errors)) from last
        raise ConnectionLost(f"could not reach {peer}: " + "; ".join(errors)) from last

    async def _dial_addr(self, addr: Multiaddr, expected: PeerId | None) -> MuxedConnection:
        if self._stopping or not self._running:
            raise ClosedError("host is not running")
        if len(self._all_conns) >= self.config.max_connections:
            raise LimitExceeded(
                f"max_connections ({self.config.max_connections}) reached",
                limit_name="max_connections",
                limit=self.config.max_connections,
                value=len(self._all_conns) + 1,
            )
        bare = addr.without_peer_id()
        transport = self._transport_for(bare)
        async with deadline(self.config.dial_timeout, f"dial {bare}"):
            if self.middleware.has(Hook.WILL_DIAL) and not await self.middleware.run(
                Hook.WILL_DIAL, addr, expected
            ):
                raise Vetoed(f"dial to {addr} vetoed by a WILL_DIAL hook", hook=Hook.WILL_DIAL)
            raw = await transport.dial(bare)
        async with deadline(self.config.handshake_timeout, f"handshake with {bare}"):
            conn = await upgrade(
                raw, identity=self.identity, config=self.config, expected_peer=expected
            )
        log.debug(
            "connected to %s at %s (%s, %s)",
            conn.remote_peer,
            bare,
            conn.security_protocol,
            conn.muxer_protocol,
        )
        if self.middleware.has(Hook.PEER_CONNECTED):
            return await self._admit(conn)
        return self._register(conn)

    # ------------------------------------------------------------- inbound
    def _on_raw_connection(self, raw: RawConnection) -> None:
        if self._stopping:
            raw.abort()
            return
        if len(self._all_conns) >= self.config.max_connections:
            log.warning(
                "refusing connection from %s: max_connections (%d) reached",
                raw.remote_addr,
                self.config.max_connections,
            )
            raw.abort()
            return
        if self._pending_handshakes >= self.config.max_pending_handshakes:
            log.warning(
                "refusing connection from %s: max_pending_handshakes (%d) reached",
                raw.remote_addr,
                self.config.max_pending_handshakes,
            )
            raw.abort()
            return
        if self.middleware.has(Hook.CONNECTION_ACCEPTED) and not self.middleware.run_sync(
            Hook.CONNECTION_ACCEPTED, raw
        ):
            log.info("connection from %s refused by a CONNECTION_ACCEPTED hook", raw.remote_addr)
            raw.abort()
            return
        self._pending_handshakes += 1
        self.spawn(self._accept(raw), name=f"accept {raw.remote_addr}")

    async def _accept(self, raw: RawConnection) -> None:
        try:
            async with deadline(self.config.handshake_timeout, "inbound handshake"):
                conn = await upgrade(raw, identity=self.identity, config=self.config)
        except (ProtocolError, ConnectionLost, Timeout) as exc:
            log.warning(
                "inbound connection from %s failed: %s: %s",
                raw.remote_addr,
                type(exc).__name__,
                exc,
            )
            raw.abort()
            return
        finally:
            self._pending_handshakes -= 1
        if self._stopping:
            conn.abort()
            return
        try:
            if self.middleware.has(Hook.PEER_CONNECTED):
                await self._admit(conn)
            else:
                self._register(conn)
        except LimitExceeded as exc:
            log.warning("dropping connection from %s: %s", conn.remote_peer, exc)
        except (Vetoed, Timeout, ConnectionLost, ClosedError) as exc:
            log.info("dropping connection from %s: %s", conn.remote_peer, exc)

    # ------------------------------------------------------- connection pool
    def _preferred(self, a: MuxedConnection, b: MuxedConnection) -> MuxedConnection:
        """Which of two connections to the same peer both sides keep."""

        def dialer(conn: MuxedConnection) -> PeerId:
            return self.peer_id if conn.raw.is_initiator else conn.remote_peer

        da, db = dialer(a), dialer(b)
        if da != db:
            return a if da < db else b
        return b  # same dialer twice: the newer one (the older is likely stale)

    def _register(self, conn: MuxedConnection) -> MuxedConnection:
        if conn.is_closed:
            # Closed before we took it over (e.g. the remote's PEER_CONNECTED hook
            # refused it while our upgrade finished): its on_closed already fired
            # unseen, so registering it would leak it in the pool.
            raise ConnectionLost(f"connection with {conn.remote_peer} closed during the upgrade")
        if len(self._all_conns) >= self.config.max_connections:
            conn.abort(LimitExceeded("max_connections reached", limit_name="max_connections"))
            raise LimitExceeded(
                f"max_connections ({self.config.max_connections}) reached",
                limit_name="max_connections",
                limit=self.config.max_connections,
            )
        peer = conn.remote_peer
        self._all_conns[conn] = None
        self._peer_conns.setdefault(peer, []).append(conn)
        conn.on_closed = self._on_conn_closed
        conn.on_stream = self._on_stream
        self.peerstore.record(peer).public_key = conn.remote_public_key
        if conn.raw.is_initiator:  # an inbound connection's source port is not dialable
            self.peerstore.add_addrs(peer, [conn.raw.remote_addr])
        existing = self.connection(peer)
        if existing is None:
            self._conns[peer] = conn
            self._notify_connected(conn)
            return conn
        keep = self._preferred(existing, conn)
        drop = conn if keep is existing else existing
        self._conns[peer] = keep
        log.debug("duplicate connection to %s: keeping %s, retiring %s", peer, keep, drop)
        self.spawn(self._retire(drop), name=f"retire {peer}")
        if keep is conn:
            self._notify_connected(conn)
        return keep

    async def _admit(self, conn: MuxedConnection) -> MuxedConnection:
        """Run the PEER_CONNECTED hooks on a fresh connection, then register it.

        Until the hooks have answered, streams the remote opens are held (the
        muxer bounds how many) and served once the connection is registered,
        so the remote's identify does not stall. A veto (or a raising hook)
        closes the connection and raises :class:`Vetoed`; hooks that outlast
        ``handshake_timeout`` abort it with :class:`Timeout`.
        """
        held: list[Stream] = []
        conn.on_stream = held.append
        try:
            async with deadline(
                self.config.handshake_timeout, f"PEER_CONNECTED hooks for {conn.remote_peer}"
            ):
                admitted = await self.middleware.run(Hook.PEER_CONNECTED, conn)
        except BaseException:
            conn.abort()
            raise
        if not admitted:
            await conn.close()
            raise Vetoed(
                f"connection with {conn.remote_peer} refused by a PEER_CONNECTED hook",
                hook=Hook.PEER_CONNECTED,
            )
        if self._stopping:
            conn.abort()
            raise ClosedError("host is stopping")
        if conn.is_closed:
            raise ConnectionLost(f"{conn.remote_peer} closed the connection during admission")
        kept = self._register(conn)
        for stream in held:
            self._on_stream(stream)
        return kept

    def _notify_connected(self, conn: MuxedConnection) -> None:
        for callback in self.connection_callbacks:
            try:
                callback(conn)
            except Exception:
                log.exception("connection callback failed")

    async def _retire(self, conn: MuxedConnection) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + RETIRE_GRACE
        while conn.streams and loop.time() < end and not conn.is_closed:  # noqa: ASYNC110 (bounded grace poll)
            await asyncio.sleep(0.05)
        await conn.close()

    def _on_conn_closed(self, conn: MuxedConnection, exc: BaseException | None) -> None:
        self._all_conns.pop(conn, None)
        self._negotiating.pop(conn, None)
        peer = conn.remote_peer
        same_peer = self._peer_conns.get(peer)
        if same_peer is not None:
            if conn in same_peer:
                same_peer.remove(conn)
            if not same_peer:
                del self._peer_conns[peer]
        if self._conns.get(peer) is conn:
            del self._conns[peer]
            # Promote another live connection to the same peer, if any.
            for other in same_peer or ():
                if not other.is_closed:
                    self._conns[peer] = other
                    break
            if peer not in self._conns:
                for callback in self.disconnection_callbacks:
                    try:
                        callback(conn)
                    except Exception:
                        log.exception("disconnection callback failed")
                if self.middleware.has(Hook.PEER_DISCONNECTED):
                    task = self.spawn(
                        self.middleware.run(Hook.PEER_DISCONNECTED, conn),
                        name=f"PEER_DISCONNECTED {peer}",
                    )
                    self._hook_tasks.add(task)
                    task.add_done_callback(self._hook_tasks.discard)
        if exc is not None:
            log.info("connection to %s lost: %s", peer, exc)

    async def disconnect(self, peer: PeerId) -> None:
        """Close every connection to ``peer``."""
        conns = list(self._peer_conns.get(peer, ()))
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)

    async def _reap_idle(self) -> None:
        """Close connections that carried no stream for ``idle_timeout`` seconds.

        Idle time counts from the later of the last data received and the end
        of the last stream (``MuxedConnection.last_activity``). Sleeps until
        the earliest connection can expire: activity only moves
        ``last_activity`` forward, and a busy or new connection cannot expire
        before ``now + timeout``. Waking every few seconds to scan every
        connection instead cost a 10,000-node simulation one scan per node per
        5 s. ``IDLE_REAP_LATENESS`` bounds how late a close may come.
        """
        timeout = self.config.idle_timeout
        loop = asyncio.get_running_loop()
        slack = min(timeout / 4, IDLE_REAP_LATENESS)
        wake = loop.time() + timeout
        while True:
            await asyncio.sleep(max(wake - loop.time(), slack))
            now = loop.time()
            wake = now + timeout
            for conn in list(self._all_conns):
                if conn.streams:
                    continue
                expiry = conn.last_activity + timeout
                if expiry < now:
                    log.info("closing idle connection to %s", conn.remote_peer)
                    self.spawn(conn.close(), name="close idle")
                elif expiry < wake:
                    wake = expiry

    # --------------------------------------------------------------- streams
    def _on_stream(self, stream: Stream) -> None:
        conn = stream.connection
        count = self._negotiating.get(conn, 0)
        if count >= self.config.max_inbound_stream_negotiations:
            log.warning(
                "resetting stream from %s: max_inbound_stream_negotiations (%d) reached",
                conn.remote_peer,
                self.config.max_inbound_stream_negotiations,
            )
            conn._reset(stream)
            return
        self._negotiating[conn] = count + 1
        self.spawn(self._serve_stream(stream), name="serve stream")

    async def _serve_stream(self, stream: Stream) -> None:
        conn = stream.connection
        try:
            try:
                async with deadline(self.config.negotiate_timeout, "stream negotiation"):
                    protocol = await negotiate_inbound(stream, self._handlers)
            finally:
                left = self._negotiating.get(conn, 1) - 1
                if left > 0:
                    self._negotiating[conn] = left
                else:
                    self._negotiating.pop(conn, None)
        except ClosedError:
            return  # we are shutting down this stream or connection
        except (ProtocolError, Timeout, ConnectionLost) as exc:
            level = logging.INFO if isinstance(exc, NegotiationError) else logging.WARNING
            log.log(
                level,
                "inbound stream from %s refused: %s: %s",
                stream.remote_peer,
                type(exc).__name__,
                exc,
            )
            await stream.reset()
            return
        handler = self._handlers.get(protocol)
        if handler is None:  # removed while negotiating
            await stream.reset()
            return
        try:
            await handler(stream)
        except (ConnectionLost, ClosedError) as exc:
            log.debug("handler for %s ended: %s", protocol, exc)
            await stream.reset()
            return
        except PeerwireError as exc:
            log.warning(
                "handler for %s from %s failed: %s: %s",
                protocol,
                stream.remote_peer,
                type(exc).__name__,
                exc,
            )
            await stream.reset()
            return
        except Exception:
            log.exception("handler for %s from %s raised", protocol, stream.remote_peer)
            await stream.reset()
            return
        await stream.close()

    async def new_stream(
        self,
        peer: PeerId,
        protocols: str | Sequence[str],
        *,
        conn: MuxedConnection | None = None,
        lazy: bool = False,
    ) -> Stream:
        """Open a stream to ``peer`` (dialling if needed) and negotiate one of ``protocols``.

        ``lazy=True`` (one protocol only) returns at once and lets the first
        write travel behind the proposal, saving a round trip; a refusal then
        fails the stream's reads with :class:`NegotiationError`. Only for
        request/response use, where the caller reads the answer anyway: a
        one-way sender would never learn that its bytes were refused.
        """
        wanted = [protocols] if isinstance(protocols, str) else list(protocols)
        if not wanted:
            raise UsageError("no protocol given")
        if lazy and len(wanted) != 1:
            raise UsageError("lazy negotiation proposes exactly one protocol")
        if conn is None:
            conn = await self.connect_peer(peer)
        stream = conn.open_stream()
        if lazy:
            stream.protocol = wanted[0]
            stream._negotiate_lazily(MultistreamDialer(wanted, lazy=True))
            return stream
        try:
            async with deadline(self.config.negotiate_timeout, f"negotiating {wanted}"):
                stream.protocol = await negotiate_outbound(stream, wanted)
        except BaseException:
            await stream.reset()
            raise
        return stream


async def _stream_reader(stream: Stream) -> bytes:
    data = await stream.read(NEGOTIATION_READ_SIZE)
    if not data:
        raise ConnectionLost("stream ended during protocol negotiation")
    return data


async def negotiate_outbound(stream: Stream, protocols: list[str]) -> str:
    """Agree on one of ``protocols`` on a fresh outbound stream (multistream-select)."""
    protocol, leftover = await negotiate(
        MultistreamDialer(protocols), lambda: _stream_reader(stream), stream.write
    )
    stream._unread(leftover)
    return protocol


async def negotiate_inbound(stream: Stream, handlers: dict[str, StreamHandler]) -> str:
    """Answer multistream-select on an inbound stream with the protocols we handle."""
    listener = MultistreamListener(handlers.__contains__)
    protocol, leftover = await negotiate(listener, lambda: _stream_reader(stream), stream.write)
    stream._unread(leftover)
    return protocol
