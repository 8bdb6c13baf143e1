"""TCP transport: ``/ip4|ip6/<addr>/tcp/<port>`` (and ``/dns*`` for dialing).

The receive path is an :class:`asyncio.BufferedProtocol` that reads into one
reused buffer per connection and hands the receiver a ``memoryview`` slice of
it: no allocation per read, which PERF_NOTES measured as the largest single
cost of a Python socket path. Writes go straight to the asyncio transport
(``writelines`` for batches) and its high/low water marks drive
``pause_writing``/``resume_writing``, ``write_paused`` and ``drain()``.

The plumbing shared with the memory transport (a receiver set late or
swapped, read pausing, write-pause waiters) is in ``_routed.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable, Iterable
from typing import Final, cast

from ..errors import ConnectionLost, Timeout, UsageError
from ..identity.multiaddr import Multiaddr
from ._routed import RoutedConnection, as_connection_lost, run_on_connection
from .base import DEFAULT_WRITE_HIGH_WATER, Buffer, Listener, OnConnection, Transport

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_DIAL_TIMEOUT",
    "DEFAULT_READ_BUFFER_SIZE",
    "TcpConnection",
    "TcpListener",
    "TcpTransport",
]

DEFAULT_READ_BUFFER_SIZE: Final = 256 * 1024
"""Bytes of the receive buffer (one ``recv_into`` fills at most this).

Large reads amortise the per-call Python overhead at high throughput. There is
one such buffer per :class:`TcpTransport`, shared by all its connections, so an
idle connection costs no receive buffer at all.
"""

DEFAULT_DIAL_TIMEOUT: Final = 10.0
"""Seconds a dial may take (DNS resolution and TCP handshake) before :class:`Timeout`."""

DEFAULT_BACKLOG: Final = 128
"""Pending, not yet accepted connections the kernel queues for a listener."""

_MIN_READ_BUFFER_SIZE: Final = 1024


_UNKNOWN_ADDR: Final = "/ip4/0.0.0.0/tcp/0"
_NO_BUFFER: Final = memoryview(bytearray(0))


def _sockaddr_to_multiaddr(sockaddr: object) -> Multiaddr:
    if not isinstance(sockaddr, tuple) or len(sockaddr) < 2:
        return Multiaddr(_UNKNOWN_ADDR)
    host = str(sockaddr[0]).split("%", 1)[0]  # multiaddr /ip6 carries no zone id
    proto = "ip6" if ":" in host else "ip4"
    return Multiaddr(f"/{proto}/{host}/tcp/{int(sockaddr[1])}")


_FAMILIES: Final = {
    "ip4": socket.AF_INET,
    "ip6": socket.AF_INET6,
    "dns": socket.AF_UNSPEC,
    "dns4": socket.AF_INET,
    "dns6": socket.AF_INET6,
}


def _tcp_target(addr: Multiaddr, *, allow_dns: bool) -> tuple[str, int, int] | None:
    """``(host, port, family)`` for ``/<ip|dns>/<host>/tcp/<port>[/p2p/..]``, else None."""
    components = addr.without_peer_id().components
    if len(components) != 2:
        return None
    (net, host), (proto, port) = components
    family = _FAMILIES.get(net)
    if proto != "tcp" or family is None or host is None or port is None:
        return None
    if not allow_dns and net.startswith("dns"):
        return None
    return host, int(port), family


class _TcpProtocol(asyncio.BufferedProtocol):
    """asyncio's side of a :class:`TcpConnection`: reads into a reused buffer.

    The buffer belongs to the :class:`TcpTransport` and is shared by all its
    connections: callbacks never nest, and receivers copy what they keep before
    returning (the transport contract), so one buffer per event loop suffices.
    A buffer per connection cost 256 KiB of RSS per idle connection
    (``bytearray`` zero-fills, so every page is touched).
    """

    __slots__ = ("_conn", "_view")

    def __init__(self, conn: TcpConnection, view: memoryview) -> None:
        self._conn = conn
        self._view = view

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._conn._made(cast(asyncio.Transport, transport))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        conn = self._conn
        direct = conn._direct
        if direct is not None:
            direct.data_received(self._view[:nbytes])
        else:
            conn._route_data(bytes(self._view[:nbytes]))

    def eof_received(self) -> bool:
        return self._conn._eof_from_socket()

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn._lost_from_socket(exc)
        self._view = _NO_BUFFER  # free the receive buffer with the socket

    def pause_writing(self) -> None:
        self._conn._pause_writing()

    def resume_writing(self) -> None:
        self._conn._resume_writing()


class TcpConnection(RoutedConnection):
    """One TCP connection. Created by :class:`TcpTransport`; not constructed directly.

    ``write``/``writelines`` copy buffers that are not ``bytes`` (asyncio and
    uvloop may keep a reference to unsent data), so a caller may reuse its
    buffer as soon as the call returns; pass ``bytes`` to avoid the copy.
    """

    local_addr: Multiaddr
    remote_addr: Multiaddr

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        is_initiator: bool,
        read_view: memoryview,
        write_high_water: int,
        write_low_water: int,
        on_made: Callable[[TcpConnection], None] | None = None,
    ) -> None:
        super().__init__(loop)
        self.is_initiator = is_initiator
        self.local_addr = self.remote_addr = Multiaddr(_UNKNOWN_ADDR)
        self._transport: asyncio.Transport | None = None
        self._protocol = _TcpProtocol(self, read_view)
        self._high = write_high_water
        self._low = write_low_water
        self._on_made = on_made
        self._eof_received = False
        self._auto_closing = False
        self._aborted = False

    def _made(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=self._high, low=self._low)
        self.local_addr = _sockaddr_to_multiaddr(transport.get_extra_info("sockname"))
        self.remote_addr = _sockaddr_to_multiaddr(transport.get_extra_info("peername"))
        if self._on_made is not None:
            on_made, self._on_made = self._on_made, None
            on_made(self)

    def _eof_from_socket(self) -> bool:
        self._eof_received = True
        self._route_eof()
        if self._eof_sent or self._closed_by_us:
            # Both directions are finished: let asyncio close the socket.
            self._auto_closing = True
            return False
        return True  # keep our sending half open (half-close)

    def _lost_from_socket(self, exc: Exception | None) -> None:
        if exc is not None:
            self._route_lost(as_connection_lost(exc), discard=True)
        else:
            # A clean end after both EOFs keeps unread data; a local close/abort drops it.
            self._route_lost(None, discard=not self._auto_closing)

    def _pause_source(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def _resume_source(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _usable_transport(self) -> asyncio.Transport:
        transport = self._transport
        if transport is None or self._closed_by_us or self._lost or self._eof_sent:
            self._check_writable()
        if transport is None or transport.is_closing():
            raise ConnectionLost("connection is closing")
        return transport

    def write(self, data: Buffer) -> None:
        transport = self._usable_transport()
        transport.write(data if data.__class__ is bytes else bytes(data))

    def writelines(self, chunks: Iterable[Buffer]) -> None:
        transport = self._usable_transport()
        transport.writelines([c if c.__class__ is bytes else bytes(c) for c in chunks])

    def write_eof(self) -> None:
        transport = self._transport
        if self._eof_sent or self._closed_by_us or self._lost or transport is None:
            return
        if transport.is_closing():
            return
        self._eof_sent = True
        transport.write_eof()
        if self._eof_received:
            self._auto_closing = True
            transport.close()

    def close(self) -> None:
        if self._closed_by_us:
            return
        self._mark_closed_by_us()
        if self._transport is not None and not self._lost:
            self._transport.close()

    def abort(self) -> None:
        self._mark_closed_by_us()
        transport = self._transport
        if self._aborted or self._lost or transport is None:
            return
        self._aborted = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: close with RST, so the remote learns at once that the
            # connection broke instead of seeing an orderly EOF.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    @property
    def is_closing(self) -> bool:
        transport = self._transport
        return (
            self._closed_by_us or self._lost or (transport is not None and transport.is_closing())
        )

    def __repr__(self) -> str:
        return f"<TcpConnection {self.local_addr} -> {self.remote_addr}>"


class TcpListener(Listener):
    """A listening TCP socket. Closing it stops accepting; accepted connections stay open."""

    def __init__(self, on_connection: OnConnection) -> None:
        self._on_connection = on_connection
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    def _accepted(self, conn: TcpConnection) -> None:
        run_on_connection(self._on_connection, conn, self._tasks)

    @property
    def addrs(self) -> list[Multiaddr]:
        if self._server is None:
            return []
        return [_sockaddr_to_multiaddr(sock.getsockname()) for sock in self._server.sockets]

    async def close(self) -> None:
        # Not Server.wait_closed(): from Python 3.12 it also waits for every
        # accepted connection to close, which is not what closing a listener means.
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0)


class TcpTransport(Transport):
    """Dials and listens on TCP over IPv4/IPv6; dials ``/dns``, ``/dns4``, ``/dns6`` too.

    All options are keyword-only: ``dial_timeout`` (seconds, then
    :class:`Timeout`), ``backlog``, ``reuse_port`` (SO_REUSEPORT, off by
    default), ``read_buffer_size``, and the write buffer's
    ``write_high_water``/``write_low_water`` (bytes; low defaults to high / 4).
    """

    name = "tcp"

    def __init__(
        self,
        *,
        dial_timeout: float = DEFAULT_DIAL_TIMEOUT,
        backlog: int = DEFAULT_BACKLOG,
        reuse_port: bool = False,
        read_buffer_size: int = DEFAULT_READ_BUFFER_SIZE,
        write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
        write_low_water: int | None = None,
    ) -> None:
        if not dial_timeout > 0:
            raise UsageError(f"dial_timeout must be positive, not {dial_timeout!r}")
        if backlog < 1:
            raise UsageError(f"backlog must be at least 1, not {backlog!r}")
        if read_buffer_size < _MIN_READ_BUFFER_SIZE:
            raise UsageError(f"read_buffer_size must be at least {_MIN_READ_BUFFER_SIZE}")
        low = write_high_water // 4 if write_low_water is None else write_low_water
        if not 0 <= low <= write_high_water:
            raise UsageError("need 0 <= write_low_water <= write_high_water")
        self.dial_timeout = dial_timeout
        self.backlog = backlog
        self.reuse_port = reuse_port
        self.read_buffer_size = read_buffer_size
        self._shared_view: memoryview | None = None
        self.write_high_water = write_high_water
        self.write_low_water = low

    def _new_connection(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        is_initiator: bool,
        on_made: Callable[[TcpConnection], None] | None = None,
    ) -> TcpConnection:
        return TcpConnection(
            loop,
            is_initiator=is_initiator,
            read_view=self._read_view(),
            write_high_water=self.write_high_water,
            write_low_water=self.write_low_water,
            on_made=on_made,
        )

    def _read_view(self) -> memoryview:
        """The receive buffer shared by this transport's connections (made on first use)."""
        if self._shared_view is None:
            self._shared_view = memoryview(bytearray(self.read_buffer_size))
        return self._shared_view

    def can_dial(self, addr: Multiaddr) -> bool:
        return _tcp_target(addr, allow_dns=True) is not None

    def can_listen(self, addr: Multiaddr) -> bool:
        return _tcp_target(addr, allow_dns=False) is not None

    async def dial(self, addr: Multiaddr) -> TcpConnection:
        """Connect; ConnectionLost (refused, unreachable, DNS failure) or Timeout."""
        target = _tcp_target(addr, allow_dns=True)
        if target is None:
            raise UsageError(f"TCP transport cannot dial {addr}")
        host, port, family = target
        loop = asyncio.get_running_loop()
        conn = self._new_connection(loop, is_initiator=True)
        try:
            async with asyncio.timeout(self.dial_timeout):
                await loop.create_connection(lambda: conn._protocol, host, port, family=family)
        except TimeoutError as exc:  # before OSError: TimeoutError is an OSError subclass
            raise Timeout(f"dialing {addr} timed out after {self.dial_timeout} s") from exc
        except OSError as exc:
            raise ConnectionLost(f"dialing {addr} failed: {exc}") from exc
        return conn

    async def listen(self, addr: Multiaddr, on_connection: OnConnection) -> TcpListener:
        """Bind and accept; port 0 picks a free port (see ``listener.addrs``)."""
        target = _tcp_target(addr, allow_dns=False)
        if target is None:
            raise UsageError(f"TCP transport cannot listen on {addr}")
        host, port, family = target
        loop = asyncio.get_running_loop()
        listener = TcpListener(on_connection)

        def factory() -> _TcpProtocol:
            conn = self._new_connection(loop, is_initiator=False, on_made=listener._accepted)
            return conn._protocol

        try:
            listener._server = await loop.create_server(
                factory,
                host,
                port,
                family=family,
                backlog=self.backlog,
                reuse_port=self.reuse_port or None,
            )
        except OSError as exc:
            raise UsageError(f"cannot listen on {addr}: {exc}") from exc
        return listener
