"""``Node``: the object a program embeds.

A node is a :class:`~peerwire.host.host.Host` (connections, streams) plus the
standard services every libp2p peer runs (identify, ping). Later layers
(messaging, overlays, broadcast, pubsub, DHT) attach to the same host.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from .config import Config
from .errors import UsageError, Vetoed
from .host.host import Host, StreamHandler
from .host.middleware import Hook, Middleware
from .host.peerstore import PeerStore
from .identity.identity import Identity
from .identity.multiaddr import Multiaddr
from .identity.peer_id import PeerId
from .mux.session import MuxedConnection
from .mux.stream import Stream
from .overlay.base import Overlay
from .protocols.broadcast.service import BroadcastMode, BroadcastService, BroadcastStats, Validator
from .protocols.identify import IdentifyInfo, IdentifyService
from .protocols.messaging import Inbox, Message, MessagingService
from .protocols.messaging.service import Handler
from .protocols.ping import PING_PROTOCOL, handle_ping
from .protocols.ping import ping as ping_peer
from .protocols.relay.link import Link, LocalDelivery
from .protocols.relay.service import RelayService, RelayStats
from .transport.base import Transport

if TYPE_CHECKING:
    from .protocols.kad.service import KadService

log = logging.getLogger("peerwire.node")

AddrLike = Multiaddr | str
PeerLike = PeerId | str
H = TypeVar("H", bound=Handler)


def _peer(peer: PeerLike) -> PeerId:
    return PeerId.from_string(peer) if isinstance(peer, str) else peer


class Node:
    """A peer in a peerwire / libp2p network.

    ``listen`` takes multiaddrs such as ``/ip4/127.0.0.1/tcp/0`` or
    ``/memory/<name>``; ``bootstrap`` takes addresses of peers to connect to at
    start (anything ``node.addrs`` holds). Use as ``async with Node(...) as node``
    or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        identity: Identity | None = None,
        listen: Iterable[AddrLike] = (),
        *,
        overlay: str | None = None,
        bootstrap: Iterable[AddrLike] = (),
        config: Config | None = None,
        transports: Sequence[Transport] | None = None,
    ) -> None:
        if overlay not in (None, "chord", "kademlia"):
            raise UsageError(
                f"overlay {overlay!r} is not available in this version of peerwire; "
                "use overlay=None, 'chord' or 'kademlia'"
            )
        self.identity = identity or Identity.generate()
        self.config = config or Config()
        self._listen = [Multiaddr(a) if isinstance(a, str) else a for a in listen]
        self._bootstrap = [Multiaddr(a) if isinstance(a, str) else a for a in bootstrap]
        self.middleware = Middleware()
        """The node's hook chains; add to them with :meth:`use`."""
        self.host = Host(
            self.identity, self.config, transports=transports, middleware=self.middleware
        )
        self._identify = IdentifyService(self.host)
        self.messaging = MessagingService(self.host)
        delivery = LocalDelivery(
            self.host, self.messaging, max_pending=self.config.message_queue_size
        )
        self._relay = RelayService(
            self.host,
            self.messaging,
            lambda: self.overlay,
            Link(self.host, self.messaging, max_queued=self.config.relay.queue_size),
            delivery,
        )
        self._broadcast = BroadcastService(
            self.host,
            self.messaging,
            lambda: self.overlay,
            Link(self.host, self.messaging, max_queued=self.config.broadcast.queue_size),
            delivery,
        )
        self.host.set_stream_handler(PING_PROTOCOL, handle_ping)
        self.overlay: Overlay | None = None
        """The node's overlay (``overlay=`` argument), or None."""
        self._dht: KadService | None = None
        # Overlays are imported only when asked for: most programs use one or none,
        # and importing both costs ~100 ms of process start.
        if overlay == "kademlia":
            from .protocols.kad.overlay import KademliaOverlay

            kad = KademliaOverlay(self.host, self.config.kad)
            self.overlay, self._dht = kad, kad.dht
        elif overlay == "chord":
            from .overlay.chord import ChordOverlay

            self.overlay = ChordOverlay(self.host, self.config.chord, bootstrap=self._bootstrap)

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Listen, then connect to the bootstrap peers (failures are logged, not raised).

        With an overlay, it starts before the bootstrap dials and then joins
        through the bootstrap peers that answered (for Kademlia: a self lookup,
        then a refresh of every non-empty bucket).

        Runs the NODE_WILL_START hooks first (a False from one raises
        :class:`Vetoed` and nothing starts) and NODE_STARTED at the end.
        """
        if self.host.is_running:
            raise UsageError("node already started")
        if not await self.middleware.run(Hook.NODE_WILL_START, self):
            raise Vetoed("node start vetoed by a NODE_WILL_START hook", hook=Hook.NODE_WILL_START)
        await self.host.start(self._listen)
        if self.overlay is not None:
            await self.overlay.start()
        joined: list[PeerId] = []
        if self._bootstrap:
            results = await asyncio.gather(
                *(self.host.connect(addr) for addr in self._bootstrap), return_exceptions=True
            )
            for addr, result in zip(self._bootstrap, results, strict=True):
                if isinstance(result, BaseException):
                    log.warning("bootstrap peer %s unreachable: %s", addr, result)
                else:
                    joined.append(result)
        if self.overlay is not None:
            await self.overlay.join(joined)
        await self.middleware.run(Hook.NODE_STARTED, self)

    async def stop(self) -> None:
        """Close every connection and listener.

        NODE_WILL_STOP and NODE_STOPPED hooks are notified around it; stop
        cannot be vetoed (a False only ends that hook chain).
        """
        if not self.host.is_running:
            return
        await self.middleware.run(Hook.NODE_WILL_STOP, self)
        if self.overlay is not None:
            await self.overlay.stop()
        await self._relay.stop()
        await self._broadcast.stop()
        await self.messaging.stop()
        await self.host.stop()
        await self.middleware.run(Hook.NODE_STOPPED, self)

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ----------------------------------------------------------- middleware
    def use(self, hook: Hook, fn: Callable[..., Any], priority: int = 0) -> Callable[[], None]:
        """Add ``fn`` to the ``hook`` chain (higher ``priority`` first); returns a remover.

        See :class:`peerwire.Hook` and ``docs/middleware.md`` for what each hook
        receives and what its return value means. May be called before or
        after start.
        """
        return self.middleware.use(hook, fn, priority)

    # ----------------------------------------------------------------- info
    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    @property
    def addrs(self) -> list[Multiaddr]:
        """Our listen addresses, each ending in /p2p/<peer id>."""
        return self.host.addrs

    @property
    def peerstore(self) -> PeerStore:
        return self.host.peerstore

    def peers(self) -> list[PeerId]:
        """Peers we hold an open connection to."""
        return self.host.connected_peers()

    def connection(self, peer: PeerLike) -> MuxedConnection | None:
        return self.host.connection(_peer(peer))

    @property
    def dht(self) -> KadService:
        """The Kademlia DHT (``overlay="kademlia"`` only): ``find_peer``,
        ``get_closest_peers``, ``put_value``, ``get_value``, ``provide``,
        ``find_providers``. Tune it with ``Config(kad=KadConfig(...))``."""
        if self._dht is None:
            raise UsageError('node.dht needs a node created with overlay="kademlia"')
        return self._dht

    # ---------------------------------------------------------- connections
    async def connect(self, addr: AddrLike) -> PeerId:
        """Connect to ``addr``; a trailing /p2p/<id> is verified against the handshake."""
        return await self.host.connect(addr)

    async def disconnect(self, peer: PeerLike) -> None:
        await self.host.disconnect(_peer(peer))

    async def ping(self, peer: PeerLike) -> float:
        """libp2p ping; returns the round-trip time in seconds."""
        return (await ping_peer(self.host, _peer(peer), count=1))[0]

    async def identify(self, peer: PeerLike, *, timeout: float | None = None) -> IdentifyInfo:
        """What ``peer`` says about itself (agent, protocols, addresses, key)."""
        return await self._identify.identify(_peer(peer), timeout=timeout)

    # -------------------------------------------------------------- streams
    async def open_stream(self, peer: PeerLike, protocol: str | Sequence[str]) -> Stream:
        """Open a raw libp2p stream to ``peer`` speaking ``protocol`` (or the first agreed)."""
        return await self.host.new_stream(_peer(peer), protocol)

    def set_stream_handler(self, protocol: str, handler: StreamHandler) -> None:
        """Serve ``protocol``: ``await handler(stream)`` runs for each inbound stream."""
        self.host.set_stream_handler(protocol, handler)

    def remove_stream_handler(self, protocol: str) -> None:
        self.host.remove_stream_handler(protocol)

    # ------------------------------------------------------------- messages
    def on(self, protocol: str) -> Callable[[H], H]:
        """Decorator: ``@node.on("/chat/1.0.0")`` handles messages for a protocol.

        The handler gets a :class:`Message`; sync or async; returning bytes
        answers a request, returning None sends no reply, raising sends an
        error reply (the requester gets :class:`RemoteError`).
        """

        def register(handler: H) -> H:
            self.messaging.on(protocol, handler)
            return handler

        return register

    def add_handler(self, protocol: str, handler: Handler) -> None:
        """Non-decorator form of :meth:`on`."""
        self.messaging.on(protocol, handler)

    def remove_handler(self, protocol: str) -> None:
        self.messaging.off(protocol)

    def send(self, peer: PeerLike, protocol: str, data: bytes) -> Awaitable[None]:
        """Fire and forget: ``await`` returns once handed to the connection (dials if needed).

        (A plain function returning the coroutine: one frame less per message.)
        """
        return self.messaging.send(peer if type(peer) is PeerId else _peer(peer), protocol, data)

    async def request(
        self, peer: PeerLike, protocol: str, data: bytes, timeout: float | None = None
    ) -> bytes:
        """Send a request and return the reply; ``Timeout``, ``RemoteError`` or
        ``ConnectionLost`` otherwise. ``timeout`` defaults to ``Config.request_timeout``."""
        return await self.messaging.request(_peer(peer), protocol, data, timeout)

    def inbox(self, protocol: str, maxsize: int | None = None) -> Inbox:
        """``async for msg in node.inbox(protocol)``: the alternative to :meth:`on`."""
        return self.messaging.inbox(protocol, maxsize)

    async def reply(self, msg: Message, data: bytes) -> None:
        """Answer a request taken from an inbox (direct or routed)."""
        if msg.kind == "relay":
            self._relay.reply(msg, data)
        else:
            self.messaging.reply(msg, data)

    # ------------------------------------------------------ relay, broadcast
    def route(self, key: bytes | PeerId, protocol: str, data: bytes) -> Awaitable[None]:
        """Deliver ``data`` to the node responsible for ``key`` (32 bytes or a PeerId).

        Hops through the overlay; the receiver's handler gets a Message with
        ``kind == "relay"``, ``hops`` and ``sender`` = this node. Returns once
        the first hop took it; raises ``Unroutable`` (a ``ConnectionLost``) if
        no next hop would, ``UsageError`` without an overlay.
        """
        return self._relay.route(key, protocol, data)

    async def route_request(
        self, key: bytes | PeerId, protocol: str, data: bytes, timeout: float | None = None
    ) -> bytes:
        """Route a request to the node responsible for ``key`` and return its reply.

        ``Timeout`` after ``timeout`` (default ``Config.request_timeout``);
        ``RemoteError`` when the responsible node's handler failed or the
        message could not be routed on the way (``code``: see
        ``peerwire.protocols.relay.codec``); ``ProtocolNotSupported`` when it
        has no handler.
        """
        return await self._relay.route_request(key, protocol, data, timeout)

    def relay_stats(self) -> RelayStats:
        """Counters of routed messages seen by this node (delivered, forwarded, dropped, hops)."""
        return self._relay.stats()

    async def broadcast(
        self,
        protocol: str,
        data: bytes,
        mode: BroadcastMode = "push",
        *,
        copies: int = 1,
        hop_limit: int | None = None,
    ) -> bytes:
        """Deliver ``data`` to every other node's ``protocol`` handler (``kind == "broadcast"``).

        ``mode``: ``"push"`` floods the whole message to every neighbour;
        ``"pull"`` announces its id and lets neighbours fetch the body once;
        ``"tree"`` sends it down a spanning tree of the Chord fingers (exactly
        one delivery per node; ``copies=K`` uses K trees for robustness).
        Messages are signed by this node. Returns the 16-byte message id.
        """
        return await self._broadcast.broadcast(
            protocol, data, mode, copies=copies, hop_limit=hop_limit
        )

    def set_broadcast_validator(self, protocol: str, validator: Validator | None) -> None:
        """Accept or refuse broadcast messages for ``protocol`` before they are delivered
        here and relayed further: ``validator(msg) -> bool`` (sync or async). A refused
        message is neither delivered nor passed on. ``None`` removes the validator."""
        self._broadcast.set_validator(protocol, validator)

    def broadcast_stats(self) -> BroadcastStats:
        """Counters of this node's broadcast traffic (deliveries, duplicates, bodies, bytes)."""
        return self._broadcast.stats()

    def __repr__(self) -> str:
        return f"<Node {self.peer_id} {'running' if self.host.is_running else 'stopped'}>"
