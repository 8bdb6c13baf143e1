"""``Node``: the object a program embeds.

A node is a :class:`~peerwire.host.host.Host` (connections, streams) plus the
standard services every libp2p peer runs (identify, ping). Later layers
(messaging, overlays, broadcast, pubsub, DHT) attach to the same host.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from types import TracebackType

from .config import Config
from .errors import UsageError
from .host.host import Host, StreamHandler
from .host.peerstore import PeerStore
from .identity.identity import Identity
from .identity.multiaddr import Multiaddr
from .identity.peer_id import PeerId
from .mux.session import MuxedConnection
from .mux.stream import Stream
from .protocols.identify import IdentifyInfo, IdentifyService
from .protocols.ping import PING_PROTOCOL, handle_ping
from .protocols.ping import ping as ping_peer
from .transport.base import Transport

log = logging.getLogger("peerwire.node")

AddrLike = Multiaddr | str
PeerLike = PeerId | str


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
        if overlay is not None:
            raise UsageError(
                f"overlay {overlay!r} is not available in this version of peerwire; "
                "use overlay=None"
            )
        self.identity = identity or Identity.generate()
        self.config = config or Config()
        self._listen = [Multiaddr(a) if isinstance(a, str) else a for a in listen]
        self._bootstrap = [Multiaddr(a) if isinstance(a, str) else a for a in bootstrap]
        self.host = Host(self.identity, self.config, transports=transports)
        self._identify = IdentifyService(self.host)
        self.host.set_stream_handler(PING_PROTOCOL, handle_ping)

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Listen, then connect to the bootstrap peers (failures are logged, not raised)."""
        await self.host.start(self._listen)
        if self._bootstrap:
            results = await asyncio.gather(
                *(self.host.connect(addr) for addr in self._bootstrap), return_exceptions=True
            )
            for addr, result in zip(self._bootstrap, results, strict=True):
                if isinstance(result, BaseException):
                    log.warning("bootstrap peer %s unreachable: %s", addr, result)

    async def stop(self) -> None:
        await self.host.stop()

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

    def __repr__(self) -> str:
        return f"<Node {self.peer_id} {'running' if self.host.is_running else 'stopped'}>"
