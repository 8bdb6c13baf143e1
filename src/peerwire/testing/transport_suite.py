"""A conformance suite that every peerwire transport must pass.

Give it a factory of fresh transports and an address to listen on::

    from peerwire.testing.transport_suite import check_transport
    from peerwire.transport import TcpTransport

    await check_transport(TcpTransport, "/ip4/127.0.0.1/tcp/0")

:func:`check_transport` runs every check in :data:`ALL_CHECKS`; each check is
also callable on its own. A failed expectation raises
:class:`TransportCheckFailed`; every check is bounded by ``timeout`` seconds.
The listen address must let several listeners coexist (TCP port 0, or
``/memory/0``), and every transport a factory returns must be able to reach
every other (memory transports must share one network).

Transports carry byte streams, so message-level checks use
:class:`FramedConnection`, a small public helper that frames messages with a
uvarint length prefix (libp2p's usual framing) over any
:class:`~peerwire.transport.base.RawConnection`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final, Protocol

from ..errors import (
    ClosedError,
    ConnectionLost,
    MessageTooLarge,
    ProtocolError,
    RemoteLimitExceeded,
    UsageError,
)
from ..identity.multiaddr import Multiaddr
from ..transport.base import Buffer, RawConnection, Transport
from ..varint import decode_uvarint, encode_uvarint

__all__ = [
    "ALL_CHECKS",
    "DEFAULT_CHECK_TIMEOUT",
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FramedConnection",
    "RecordingReceiver",
    "TransportCheck",
    "TransportCheckFailed",
    "TransportFactory",
    "check_addr_round_trip",
    "check_all_pairs",
    "check_backpressure",
    "check_close_semantics",
    "check_concurrent_sends",
    "check_listener_addrs",
    "check_listener_close",
    "check_max_message_size",
    "check_single_message",
    "check_transport",
    "connection_pair",
]

DEFAULT_MAX_MESSAGE_SIZE: Final = 1 << 20
"""Largest message :class:`FramedConnection` sends or accepts (1 MiB)."""

DEFAULT_MAX_BUFFERED_BYTES: Final = 4 << 20
"""Bytes of complete, unread messages a :class:`FramedConnection` queues before
it pauses reading (backpressure instead of unbounded buffering)."""

DEFAULT_CHECK_TIMEOUT: Final = 30.0
"""Seconds each check may take; generous, because shared CI machines are slow."""

TransportFactory = Callable[[], Transport]


class TransportCheck(Protocol):
    def __call__(
        self, make_transport: TransportFactory, listen_addr: str, *, timeout: float = ...
    ) -> Awaitable[None]: ...


class TransportCheckFailed(AssertionError):
    """A transport did not behave as the conformance suite requires."""


def _expect(condition: object, message: str) -> None:
    if not condition:
        raise TransportCheckFailed(message)


def _expect_raises(kind: type[BaseException], func: Callable[[], object], what: str) -> None:
    try:
        func()
    except kind:
        return
    except BaseException as exc:
        raise TransportCheckFailed(f"{what}: expected {kind.__name__}, got {exc!r}") from exc
    raise TransportCheckFailed(f"{what}: expected {kind.__name__}, nothing was raised")


async def _expect_raises_async(kind: type[BaseException], aw: Awaitable[object], what: str) -> None:
    try:
        await aw
    except kind:
        return
    except Exception as exc:
        raise TransportCheckFailed(f"{what}: expected {kind.__name__}, got {exc!r}") from exc
    raise TransportCheckFailed(f"{what}: expected {kind.__name__}, nothing was raised")


@contextlib.asynccontextmanager
async def _bounded(what: str, timeout: float) -> AsyncIterator[None]:
    """Run the body under ``timeout``; expiry becomes a TransportCheckFailed naming the step."""
    cm = asyncio.timeout(timeout)
    try:
        async with cm:
            yield
    except TimeoutError as exc:
        if cm.expired():
            raise TransportCheckFailed(f"{what}: not finished after {timeout} s") from exc
        raise


def _pattern(size: int, offset: int = 0) -> bytes:
    """``size`` bytes of the repeating 0..255 pattern, starting at ``offset``."""
    reps = (offset % 256 + size) // 256 + 1
    start = offset % 256
    return (bytes(range(256)) * reps)[start : start + size]


_PATTERN_REF: Final = bytes(range(256)) * 257
_PATTERN_PIECE: Final = 65536


# ------------------------------------------------------------------ helpers


class RecordingReceiver:
    """A ConnectionReceiver that records what it is given and flags contract breaches.

    ``violations`` collects breaches of the receiver contract (data that is not
    a memoryview, anything after EOF or loss, a second loss).
    """

    def __init__(self, *, keep_data: bool = True) -> None:
        self.keep_data = keep_data
        self.data = bytearray()
        self.received = 0
        self.eof = False
        self.lost = False
        self.lost_exc: BaseException | None = None
        self.write_pauses = 0
        self.write_resumes = 0
        self.violations: list[str] = []
        self._changed = asyncio.Event()

    def data_received(self, data: memoryview) -> None:
        if not isinstance(data, memoryview):
            self.violations.append(f"data_received got {type(data).__name__}, not memoryview")
        if self.eof or self.lost:
            self.violations.append("data_received after eof_received/connection_lost")
        self.received += len(data)
        if self.keep_data:
            self.data += data
        self._changed.set()

    def eof_received(self) -> None:
        if self.eof or self.lost:
            self.violations.append("eof_received after eof_received/connection_lost")
        self.eof = True
        self._changed.set()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.lost:
            self.violations.append("connection_lost called twice")
        self.lost = True
        self.lost_exc = exc
        self._changed.set()

    def pause_writing(self) -> None:
        self.write_pauses += 1

    def resume_writing(self) -> None:
        self.write_resumes += 1

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds (bound it with a timeout)."""
        while not predicate():
            self._changed.clear()
            await self._changed.wait()


class _PatternSink(RecordingReceiver):
    """Counts bytes and checks they continue the 0..255 pattern, keeping none."""

    def __init__(self) -> None:
        super().__init__(keep_data=False)

    def data_received(self, data: memoryview) -> None:
        offset = self.received
        for start in range(0, len(data), _PATTERN_PIECE):
            piece = data[start : start + _PATTERN_PIECE]
            first = (offset + start) % 256
            if piece != _PATTERN_REF[first : first + len(piece)]:
                self.violations.append(f"corrupt data near byte {offset + start}")
                break
        super().data_received(data)


class FramedConnection:
    """Length-prefixed messages over a RawConnection (uvarint prefix, then the body).

    Sending more than ``max_message_size`` bytes raises :class:`MessageTooLarge`
    before anything is written. A peer declaring a longer message raises
    :class:`RemoteLimitExceeded` (a :class:`ProtocolError`) from
    :meth:`receive` and the connection is aborted. Complete messages beyond
    ``max_buffered_bytes`` pause reading until the reader catches up.
    """

    def __init__(
        self,
        conn: RawConnection,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        if max_message_size < 0 or max_buffered_bytes < 1:
            raise UsageError("max_message_size must be >= 0 and max_buffered_bytes >= 1")
        self.conn = conn
        self.max_message_size = max_message_size
        self.max_buffered_bytes = max_buffered_bytes
        self._buf = bytearray()
        self._messages: deque[bytes] = deque()
        self._queued_bytes = 0
        self._paused = False
        self._eof = False
        self._ended = False
        self._closed = False
        self._error: BaseException | None = None
        self._changed = asyncio.Event()
        conn.set_receiver(self)

    # -- sending
    def send_nowait(self, payload: Buffer) -> None:
        """Queue one message without waiting for the write buffer to drain."""
        size = memoryview(payload).nbytes
        if size > self.max_message_size:
            raise MessageTooLarge(
                f"message of {size} bytes exceeds max_message_size ({self.max_message_size})",
                limit_name="max_message_size",
                limit=self.max_message_size,
                value=size,
            )
        self.conn.writelines((encode_uvarint(size), payload))

    async def send(self, payload: Buffer) -> None:
        """Send one message, then wait while the connection's writes are paused."""
        self.send_nowait(payload)
        await self.conn.drain()

    # -- receiving
    async def receive(self) -> bytes | None:
        """The next message, or None once the remote ended the stream cleanly."""
        while True:
            if self._messages:
                message = self._messages.popleft()
                self._queued_bytes -= len(message)
                if self._paused and self._queued_bytes < self.max_buffered_bytes // 2:
                    self._paused = False
                    self.conn.resume_reading()
                return message
            if self._closed:
                raise ClosedError("framed connection was closed")
            error = self._error
            if isinstance(error, ProtocolError):
                raise error
            if error is not None:
                raise ConnectionLost("connection lost") from error
            if self._eof or self._ended:
                if self._buf:
                    raise ProtocolError(f"stream ended inside a message ({len(self._buf)} bytes)")
                return None
            self._changed.clear()
            await self._changed.wait()

    def __aiter__(self) -> FramedConnection:
        return self

    async def __anext__(self) -> bytes:
        message = await self.receive()
        if message is None:
            raise StopAsyncIteration
        return message

    async def close(self) -> None:
        """Close gracefully (queued data is flushed) and wait until closed."""
        self._closed = True
        self._changed.set()
        self.conn.close()
        await self.conn.wait_closed()

    def abort(self) -> None:
        self._closed = True
        self._changed.set()
        self.conn.abort()

    # -- ConnectionReceiver
    def data_received(self, data: memoryview) -> None:
        if self._error is not None:
            return
        buf = self._buf
        buf += data
        pos = 0
        limit = self.max_message_size
        try:
            while True:
                got = decode_uvarint(buf, pos)
                if got is None:
                    break
                length, start = got
                if length > limit:
                    raise RemoteLimitExceeded(
                        f"peer declared a {length}-byte message; max_message_size is {limit}",
                        limit_name="max_message_size",
                        limit=limit,
                        value=length,
                    )
                end = start + length
                if end > len(buf):
                    break
                self._messages.append(bytes(buf[start:end]))
                self._queued_bytes += length
                pos = end
        except ProtocolError as exc:
            self._error = exc
            buf.clear()
            self._changed.set()
            self.conn.abort()
            return
        if pos:
            del buf[:pos]
        if not self._paused and self._queued_bytes >= self.max_buffered_bytes:
            self._paused = True
            self.conn.pause_reading()
        self._changed.set()

    def eof_received(self) -> None:
        self._eof = True
        self._changed.set()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._ended = True
        if exc is not None and self._error is None:
            self._error = exc
        self._changed.set()

    def pause_writing(self) -> None:
        """Nothing to do: :meth:`send` waits in ``conn.drain()``."""

    def resume_writing(self) -> None:
        """Nothing to do: :meth:`send` waits in ``conn.drain()``."""


@contextlib.asynccontextmanager
async def connection_pair(
    make_transport: TransportFactory, listen_addr: str
) -> AsyncIterator[tuple[RawConnection, RawConnection]]:
    """``(dialer side, accepted side)`` of one fresh connection; aborted on exit.

    The accepted side has no receiver yet, so its first bytes exercise the
    transport's buffering until ``set_receiver``.
    """
    server, client = make_transport(), make_transport()
    accepted: list[RawConnection] = []
    arrived = asyncio.Event()

    def on_connection(conn: RawConnection) -> None:
        accepted.append(conn)
        arrived.set()

    listener = await server.listen(Multiaddr(listen_addr), on_connection)
    try:
        _expect(listener.addrs, f"listener on {listen_addr} reports no addresses")
        dialer = await client.dial(listener.addrs[0])
        try:
            await arrived.wait()
            yield dialer, accepted[0]
        finally:
            dialer.abort()
            for conn in accepted:
                conn.abort()
    finally:
        await listener.close()


# ------------------------------------------------------------------ checks


async def check_listener_addrs(
    make_transport: TransportFactory, listen_addr: str, *, timeout: float = DEFAULT_CHECK_TIMEOUT
) -> None:
    """(1) A listener reports its real, dialable addresses (port/name 0 resolved)."""
    async with _bounded("listener addrs", timeout):
        transport = make_transport()
        asked = Multiaddr(listen_addr)
        _expect(transport.can_listen(asked), f"can_listen({listen_addr}) is False")
        listener = await transport.listen(asked, lambda conn: conn.abort())
        try:
            addrs = listener.addrs
            _expect(addrs, "listener.addrs is empty")
            for addr in addrs:
                _expect(isinstance(addr, Multiaddr), f"listener address {addr!r} is no Multiaddr")
                _expect(transport.can_dial(addr), f"can_dial({addr}) is False for its own listener")
                if asked.components[-1][1] == "0":
                    _expect(addr.components[-1][1] != "0", f"{addr} still asks for 0")
            conn = await transport.dial(addrs[0])
            conn.abort()
        finally:
            await listener.close()


async def check_addr_round_trip(
    make_transport: TransportFactory, listen_addr: str, *, timeout: float = DEFAULT_CHECK_TIMEOUT
) -> None:
    """(2) Every address a transport reports survives text and binary round trips."""
    async with (
        _bounded("address round trip", timeout),
        connection_pair(make_transport, listen_addr) as (a, b),
    ):
        for addr in (a.local_addr, a.remote_addr, b.local_addr, b.remote_addr):
            _expect(isinstance(addr, Multiaddr), f"connection address {addr!r} is no Multiaddr")
            text = str(addr)
            again = Multiaddr(text)
            _expect(again == addr and str(again) == text, f"{text} does not round-trip as text")
            _expect(Multiaddr(addr.to_bytes()) == addr, f"{text} does not round-trip as binary")
        _expect(a.remote_addr == b.local_addr, "dialer's remote_addr != acceptor's local_addr")
        _expect(a.local_addr == b.remote_addr, "dialer's local_addr != acceptor's remote_addr")


async def check_single_message(
    make_transport: TransportFactory, listen_addr: str, *, timeout: float = DEFAULT_CHECK_TIMEOUT
) -> None:
    """(3) One message each way arrives intact, even if sent before the receiver is set."""
    async with (
        _bounded("single message", timeout),
        connection_pair(make_transport, listen_addr) as (a, b),
    ):
        _expect(a.is_initiator and not b.is_initiator, "is_initiator is wrong")
        payload = b"peerwire transport conformance\n" + _pattern(4096)
        fa = FramedConnection(a)
        await fa.send(payload)
        await asyncio.sleep(0.01)  # let it arrive before the acceptor has a receiver
        fb = FramedConnection(b)
        _expect(await fb.receive() == payload, "message arrived corrupted")
        await fb.send(payload[::-1])
        _expect(await fa.receive() == payload[::-1], "reply arrived corrupted")


async def check_all_pairs(
    make_transport: TransportFactory,
    listen_addr: str,
    *,
    timeout: float = DEFAULT_CHECK_TIMEOUT,
    endpoints: int = 10,
) -> None:
    """(4) ``endpoints`` nodes each listen and dial every other; every message arrives."""
    async with _bounded("all pairs", timeout):
        transports = [make_transport() for _ in range(endpoints)]
        got: list[tuple[int, bytes]] = []
        errors: list[BaseException] = []
        all_served = asyncio.Event()
        expected = endpoints * (endpoints - 1)

        async def serve(me: int, conn: RawConnection) -> None:
            framed = FramedConnection(conn)
            try:
                message = await framed.receive()
                if message is None:
                    raise TransportCheckFailed(f"endpoint {me}: stream ended before the message")
                got.append((me, message))
                await framed.send(b"ack " + message)
                _expect(await framed.receive() is None, f"endpoint {me}: expected end of stream")
                await framed.close()
            except Exception as exc:
                errors.append(exc)
                framed.abort()
            finally:
                if len(got) + len(errors) >= expected:
                    all_served.set()

        def handler(me: int) -> Callable[[RawConnection], Awaitable[None]]:
            return lambda conn: serve(me, conn)

        listeners = [
            await t.listen(Multiaddr(listen_addr), handler(i)) for i, t in enumerate(transports)
        ]
        try:

            async def talk(src: int, dst: int) -> None:
                conn = await transports[src].dial(listeners[dst].addrs[0])
                framed = FramedConnection(conn)
                message = f"{src} -> {dst}".encode()
                await framed.send(message)
                _expect(await framed.receive() == b"ack " + message, f"bad ack for {message!r}")
                await framed.close()

            await asyncio.gather(
                *(talk(i, j) for i in range(endpoints) for j in range(endpoints) if i != j)
            )
            await all_served.wait()
            if errors:
                raise TransportCheckFailed(f"a listener failed: {errors[0]!r}") from errors[0]
            want = {(j, f"{i} -> {j}".encode()) for i in range(endpoints) for j in range(endpoints)}
            want -= {(i, f"{i} -> {i}".encode()) for i in range(endpoints)}
            _expect(len(got) == expected and set(got) == want, "messages went missing or astray")
        finally:
            for listener in listeners:
                await listener.close()


async def check_concurrent_sends(
    make_transport: TransportFactory,
    listen_addr: str,
    *,
    timeout: float = DEFAULT_CHECK_TIMEOUT,
    count: int = 50,
) -> None:
    """(5) ``count`` concurrent sends each way on one connection all arrive intact."""
    async with (
        _bounded("concurrent sends", timeout),
        connection_pair(make_transport, listen_addr) as (a, b),
    ):
        fa, fb = FramedConnection(a), FramedConnection(b)

        def messages(tag: bytes) -> list[bytes]:
            return [tag + bytes([i % 256]) * (1 + (i * 1021) % 40000) for i in range(count)]

        async def collect(framed: FramedConnection) -> list[bytes]:
            out = []
            for _ in range(count):
                message = await framed.receive()
                if message is None:
                    raise TransportCheckFailed("stream ended before all messages arrived")
                out.append(message)
            return out

        to_b, to_a = messages(b"a>b"), messages(b"b>a")
        at_b = asyncio.ensure_future(collect(fb))
        at_a = asyncio.ensure_future(collect(fa))
        try:
            await asyncio.gather(*(fa.send(m) for m in to_b), *(fb.send(m) for m in to_a))
            _expect(sorted(await at_b) == sorted(to_b), "dialer->acceptor messages differ")
            _expect(sorted(await at_a) == sorted(to_a), "acceptor->dialer messages differ")
        finally:
            at_a.cancel()
            at_b.cancel()


async def check_max_message_size(
    make_transport: TransportFactory,
    listen_addr: str,
    *,
    timeout: float = DEFAULT_CHECK_TIMEOUT,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> None:
    """(6) A max-size message arrives; max+1 raises MessageTooLarge locally, sends nothing;
    a peer declaring max+1 makes the receiver raise ProtocolError."""
    async with (
        _bounded("max message size", timeout),
        connection_pair(make_transport, listen_addr) as (a, b),
    ):
        fa = FramedConnection(a, max_message_size=max_message_size)
        fb = FramedConnection(b, max_message_size=max_message_size)
        biggest = _pattern(max_message_size, 7)
        await fa.send(biggest)
        _expect(await fb.receive() == biggest, "max-size message arrived corrupted")
        try:
            await fa.send(bytes(max_message_size + 1))
        except MessageTooLarge as exc:
            _expect(exc.limit_name == "max_message_size", "MessageTooLarge names no limit")
            _expect(exc.limit == max_message_size and exc.value == max_message_size + 1, "limit")
        else:
            raise TransportCheckFailed("sending max_message_size + 1 bytes did not raise")
        await fa.send(b"after")
        _expect(await fb.receive() == b"after", "the refused message leaked onto the wire")
        a.write(encode_uvarint(max_message_size + 1) + b"xx")
        await _expect_raises_async(ProtocolError, fb.receive(), "oversized declared length")


async def check_close_semantics(
    make_transport: TransportFactory, listen_addr: str, *, timeout: float = DEFAULT_CHECK_TIMEOUT
) -> None:
    """(7) Graceful close flushes then ends the stream; abort breaks it; half-close works;
    writing after close raises ClosedError, after loss ConnectionLost."""
    async with (
        _bounded("graceful close", timeout),
        connection_pair(make_transport, listen_addr) as (a, b),
    ):
        ra, rb = RecordingReceiver(), RecordingReceiver()
        a.set_receiver(ra)
        b.set_receiver(rb)
        payload = _pattern(256 * 1024)
        for start in range(0, len(payload), 32 * 1024):
            a.write(payload[start : start + 32 * 1024])
        a.close()
        _expect(a.is_closing, "is_closing is False after close()")
        _expect_raises(ClosedError, lambda: a.write(b"x"), "write after close")
        _expect_raises(ClosedError, lambda: a.writelines([b"x"]), "writelines after close")
        await _expect_raises_async(ClosedError, a.drain(), "drain after close")
        await a.wait_closed()
        await ra.wait_for(lambda: ra.lost)
        _expect(ra.lost_exc is None, f"closer saw connection_lost({ra.lost_exc!r}), not None")
        await rb.wait_for(lambda: rb.eof or rb.lost)
        _expect(rb.data == payload, f"remote got {len(rb.data)} of {len(payload)} bytes")
        _expect(rb.lost_exc is None, f"graceful close looked like a failure: {rb.lost_exc!r}")
        b.close()
        await b.wait_closed()
        await rb.wait_for(lambda: rb.lost)
        _expect(not ra.violations and not rb.violations, f"{ra.violations + rb.violations}")

    async with _bounded("abort", timeout), connection_pair(make_transport, listen_addr) as (a, b):
        ra, rb = RecordingReceiver(), RecordingReceiver()
        a.set_receiver(ra)
        b.set_receiver(rb)
        a.write(b"ping")
        await rb.wait_for(lambda: rb.received == 4)
        a.abort()
        _expect(a.is_closing, "is_closing is False after abort()")
        _expect_raises(ClosedError, lambda: a.write(b"x"), "write after abort")
        await a.wait_closed()
        await rb.wait_for(lambda: rb.lost)
        _expect(
            isinstance(rb.lost_exc, ConnectionLost),
            f"remote of an aborted connection saw connection_lost({rb.lost_exc!r})",
        )
        _expect_raises(ConnectionLost, lambda: b.write(b"x"), "write after the connection broke")
        await _expect_raises_async(ConnectionLost, b.drain(), "drain after the connection broke")
        await b.wait_closed()
        _expect(not ra.violations and not rb.violations, f"{ra.violations + rb.violations}")

    async with (
        _bounded("half-close", timeout),
        connection_pair(make_transport, listen_addr) as (a, b),
    ):
        ra, rb = RecordingReceiver(), RecordingReceiver()
        a.set_receiver(ra)
        b.set_receiver(rb)
        a.write(b"request")
        a.write_eof()
        _expect_raises(ClosedError, lambda: a.write(b"x"), "write after write_eof")
        await rb.wait_for(lambda: rb.eof)
        _expect(rb.data == b"request" and not rb.lost, "half-close lost data or the connection")
        b.write(b"response")
        b.write_eof()
        await ra.wait_for(lambda: ra.eof)
        _expect(ra.data == b"response", "the half-closed side did not get the response")
        await a.wait_closed()
        await b.wait_closed()
        await ra.wait_for(lambda: ra.lost)
        await rb.wait_for(lambda: rb.lost)
        _expect(ra.lost_exc is None and rb.lost_exc is None, "both-sides EOF was not clean")
        _expect(not ra.violations and not rb.violations, f"{ra.violations + rb.violations}")


async def check_backpressure(
    make_transport: TransportFactory,
    listen_addr: str,
    *,
    timeout: float = DEFAULT_CHECK_TIMEOUT,
    chunk_size: int = 64 * 1024,
    max_bytes: int = 64 * 1024 * 1024,
    probe: float = 0.25,
    max_rounds: int = 20,
) -> None:
    """(8) A receiver that pauses reading makes the writer pause and ``drain()`` block;
    after it resumes, drain returns and every byte arrives intact.

    OS buffers may absorb more once the writer pauses, so the check refills up
    to ``max_rounds`` times (at most ``max_bytes`` in all) until ``drain()``
    stays blocked for ``probe`` seconds.
    """
    async with (
        _bounded("backpressure", timeout),
        connection_pair(make_transport, listen_addr) as (a, b),
    ):
        ra, sink = RecordingReceiver(), _PatternSink()
        a.set_receiver(ra)
        b.set_receiver(sink)
        b.pause_reading()
        chunk = _pattern(chunk_size - chunk_size % 256)
        sent = 0
        drain: asyncio.Future[None] | None = None
        for _ in range(max_rounds):
            while not a.write_paused and sent < max_bytes:
                a.write(chunk)
                sent += len(chunk)
            _expect(a.write_paused, f"writer not paused after {sent} bytes to a paused reader")
            drain = asyncio.ensure_future(a.drain())
            done, _ = await asyncio.wait({drain}, timeout=probe)
            if not done:
                break
            drain.result()
            drain = None
        if drain is None:
            raise TransportCheckFailed("drain() kept returning while the receiver was paused")
        _expect(ra.write_pauses >= 1, "pause_writing() was not passed to the writer's receiver")
        _expect(sink.received == 0, "data was delivered while reading was paused")
        b.resume_reading()
        await drain
        _expect(ra.write_resumes >= 1, "resume_writing() was not passed to the receiver")
        a.write_eof()
        await sink.wait_for(lambda: sink.eof or sink.lost)
        _expect(sink.received == sent, f"{sink.received} of {sent} bytes arrived")
        _expect(not sink.violations, f"{sink.violations}")


async def check_listener_close(
    make_transport: TransportFactory, listen_addr: str, *, timeout: float = DEFAULT_CHECK_TIMEOUT
) -> None:
    """A closed listener refuses new dials (ConnectionLost); accepted connections live on."""
    async with _bounded("listener close", timeout):
        server, client = make_transport(), make_transport()
        accepted: list[RawConnection] = []
        arrived = asyncio.Event()

        def on_connection(conn: RawConnection) -> None:
            accepted.append(conn)
            arrived.set()

        listener = await server.listen(Multiaddr(listen_addr), on_connection)
        addr = listener.addrs[0]
        a = await client.dial(addr)
        try:
            await arrived.wait()
            await listener.close()
            await _expect_raises_async(ConnectionLost, client.dial(addr), "dial after close")
            fa, fb = FramedConnection(a), FramedConnection(accepted[0])
            await fa.send(b"still here")
            _expect(await fb.receive() == b"still here", "accepted connection died")
        finally:
            a.abort()
            for conn in accepted:
                conn.abort()


ALL_CHECKS: Final[Sequence[TransportCheck]] = (
    check_listener_addrs,
    check_addr_round_trip,
    check_single_message,
    check_all_pairs,
    check_concurrent_sends,
    check_max_message_size,
    check_close_semantics,
    check_backpressure,
    check_listener_close,
)


async def check_transport(
    make_transport: TransportFactory, listen_addr: str, *, timeout: float = DEFAULT_CHECK_TIMEOUT
) -> None:
    """Run every check in :data:`ALL_CHECKS`; raises TransportCheckFailed on the first failure."""
    for check in ALL_CHECKS:
        await check(make_transport, listen_addr, timeout=timeout)
