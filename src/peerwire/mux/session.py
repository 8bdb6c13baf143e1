"""The asyncio adapter that drives a sans-IO muxer core over a secured connection.

Data path, receiving: the transport hands us a buffer -> the Noise transport
decrypts whole frames -> the muxer core turns them into events -> we route
events to :class:`~peerwire.mux.stream.Stream` objects. One call chain per
socket read, no task per frame.

Data path, sending: streams push bytes into the core; the first push of a
burst schedules one flush (``loop.call_soon``), which collects every queued
frame, encrypts them into as few Noise frames as possible and hands them to
the transport in one ``writelines``. A burst therefore costs one system call
and one AEAD operation per 64 KiB, not one per message.

Backpressure: yamux windows stop a writer when the remote's reader is slow;
the transport's ``pause_writing`` stops writers when the socket is slow; and
when our own readers are slow (mplex has no windows) we pause reading the
socket until they catch up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ..errors import ClosedError, ConnectionLost, PeerwireError, ProtocolError, StreamReset
from ..transport.base import RawConnection
from .events import (
    DataReceived,
    GoAwayReceived,
    MuxerCore,
    MuxEvent,
    PongReceived,
    SendWindowOpened,
    StreamEnded,
    StreamOpened,
)
from .events import StreamReset as StreamResetEvent
from .stream import Stream

if TYPE_CHECKING:
    from ..identity.keys import PublicKey
    from ..identity.peer_id import PeerId

log = logging.getLogger("peerwire.mux")

Buffer = bytes | bytearray | memoryview

DEFAULT_STREAM_READ_BUFFER = 1 << 20
"""Unread bytes one stream may hold before we stop reading the socket (mplex backpressure)."""
DEFAULT_CONNECTION_READ_BUFFER = 16 << 20
"""Unread bytes all streams of a connection may hold before we stop reading the socket."""
FLUSH_THRESHOLD = 256 << 10
"""Queued outgoing bytes that trigger an immediate flush instead of waiting for the loop."""


class SecureChannel(Protocol):
    """What the session needs from the security layer (Noise transport, or none)."""

    def encrypt_chunks(self, chunks: list[bytes]) -> list[bytes]: ...

    def receive_data(self, data: Buffer) -> list[bytes]: ...


class MuxedConnection:
    """An upgraded connection: authenticated remote peer, encrypted, multiplexed.

    Created by the upgrader; the host owns it. ``on_stream`` is called
    synchronously for each stream the remote opens; ``on_closed`` once when
    the connection is gone.
    """

    def __init__(
        self,
        raw: RawConnection,
        secure: SecureChannel | None,
        core: MuxerCore,
        *,
        remote_peer: PeerId,
        remote_public_key: PublicKey | None,
        security_protocol: str,
        muxer_protocol: str,
        stream_read_buffer: int = DEFAULT_STREAM_READ_BUFFER,
        connection_read_buffer: int = DEFAULT_CONNECTION_READ_BUFFER,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.raw = raw
        self._secure = secure
        self._core = core
        self.remote_peer = remote_peer
        self.remote_public_key = remote_public_key
        self.security_protocol = security_protocol
        self.muxer_protocol = muxer_protocol
        self.streams: dict[int, Stream] = {}
        self._early_streams: list[Stream] = []
        self._on_stream: Callable[[Stream], None] = self._early_streams.append
        self.on_closed: Callable[[MuxedConnection, BaseException | None], None] = lambda c, e: None
        self._stream_read_buffer = stream_read_buffer
        self._connection_read_buffer = connection_read_buffer
        self._unread_total = 0
        self._reading_paused = False
        self._flush_scheduled = False
        self._accepted_in_chunk = False
        self._unflushed = 0
        self._closed = False
        self._close_exc: BaseException | None = None
        self._closed_event: asyncio.Event | None = None  # made when first awaited (~0.9 KB)
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._pings: dict[int, asyncio.Future[None]] = {}
        self._next_ping = 1
        self.remote_go_away = False
        self.opened_at = self._loop.time()
        self.last_activity = self.opened_at

    # ------------------------------------------------------------- lifecycle
    def start(self, initial: Sequence[bytes], buffered_raw: Sequence[bytes] = ()) -> None:
        """Take over the raw connection.

        ``initial`` is muxer bytes the upgrader already decrypted; ``buffered_raw``
        is wire bytes it received but did not decrypt. Both are fed, in order,
        before the socket is handed over, so nothing is reordered.
        """
        for chunk in initial:
            if self._closed:
                return
            self._feed_plaintext(chunk)
        for chunk in buffered_raw:
            if self._closed:
                return
            self.data_received(memoryview(chunk))
        self.raw.set_receiver(self)
        self._flush_soon()

    @property
    def on_stream(self) -> Callable[[Stream], None]:
        """Called synchronously for each stream the remote opens.

        Streams the remote opened before the owner set this are held and
        handed over when it is set: their SYN can arrive together with the
        muxer negotiation's last bytes and so be parsed by :meth:`start`,
        before the upgrader has returned the connection to the host.
        """
        return self._on_stream

    @on_stream.setter
    def on_stream(self, callback: Callable[[Stream], None]) -> None:
        self._on_stream = callback
        early, self._early_streams = self._early_streams, []
        for stream in early:
            self._dispatch_stream(stream)

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def direction(self) -> str:
        return "outbound" if self.raw.is_initiator else "inbound"

    def __repr__(self) -> str:
        return (
            f"<MuxedConnection {self.direction} peer={self.remote_peer} "
            f"{self.raw.remote_addr} {self.security_protocol} {self.muxer_protocol}>"
        )

    async def close(self) -> None:
        """Gracefully close: go-away, flush queued frames, close the socket."""
        if self._closed:
            await self.wait_closed()
            return
        try:
            self._core.go_away(0)
            self._flush()
        except PeerwireError:
            pass
        self.raw.close()
        self._shutdown(ClosedError("connection closed"), None)
        await self.wait_closed()

    def abort(self, exc: BaseException | None = None) -> None:
        """Close at once (protocol violation, limits); streams fail with ``exc``."""
        if self._closed:
            return
        self.raw.abort()
        self._shutdown(ConnectionLost(str(exc) if exc else "connection aborted"), exc)

    async def wait_closed(self) -> None:
        if self._closed:
            return
        if self._closed_event is None:
            self._closed_event = asyncio.Event()
        await self._closed_event.wait()

    def _shutdown(self, stream_exc: BaseException, cause: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_exc = cause
        if cause is not None and stream_exc.__cause__ is None:
            stream_exc.__cause__ = cause
        for stream in list(self.streams.values()):
            stream._on_error(stream_exc)
        self.streams.clear()
        for fut in self._pings.values():
            if not fut.done():
                fut.set_exception(ConnectionLost("connection closed before pong"))
        self._pings.clear()
        self._wake_drainers(stream_exc)
        if self._closed_event is not None:
            self._closed_event.set()
        try:
            self.on_closed(self, cause)
        except Exception:
            log.exception("on_closed callback failed for %r", self)

    # -------------------------------------------------- ConnectionReceiver
    def data_received(self, data: memoryview) -> None:
        if self._closed:
            return
        try:
            if self._secure is None:
                self._dispatch(self._core.receive_data(data))
            else:
                for plaintext in self._secure.receive_data(data):
                    self._dispatch(self._core.receive_data(plaintext))
                    if self._closed:
                        return
        except ProtocolError as exc:
            log.warning("protocol error from %s, closing connection: %s", self.remote_peer, exc)
            self._fail(exc)
            return
        self.last_activity = self._loop.time()
        if self._accepted_in_chunk:
            # A new inbound stream's handler starts on the next loop pass and
            # usually answers at once (multistream echo, often the reply too):
            # flush after it, so the stream's ACK leaves with that answer in one
            # write instead of alone (the ACK is never later than that pass).
            self._accepted_in_chunk = False
            self._flush_soon()
        else:
            # Flush now rather than on the next loop pass: whatever handling this
            # chunk queued (replies, window updates) leaves in one write, one hop sooner.
            self._flush()

    def _feed_plaintext(self, data: bytes) -> None:
        try:
            self._dispatch(self._core.receive_data(data))
        except ProtocolError as exc:
            log.warning("protocol error from %s, closing connection: %s", self.remote_peer, exc)
            self._fail(exc)

    def eof_received(self) -> None:
        self.raw.close()
        self._shutdown(ConnectionLost("remote closed the connection"), None)

    def connection_lost(self, exc: BaseException | None) -> None:
        lost = ConnectionLost(f"connection lost: {exc}" if exc else "connection closed by remote")
        self._shutdown(lost, exc)

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        self._wake_drainers(None)

    def _fail(self, exc: BaseException) -> None:
        self.raw.abort()
        self._shutdown(ConnectionLost(f"connection failed: {exc}"), exc)

    # ------------------------------------------------------------ events
    def _dispatch(self, events: list[MuxEvent]) -> None:
        streams = self.streams
        for event in events:
            if isinstance(event, DataReceived):  # by far the most frequent: first
                stream = streams.get(event.stream_id)
                if stream is None:
                    self._core.acknowledge(event.stream_id, len(event.data))
                    continue
                if not stream._read_closed:
                    self._unread_total += len(event.data)
                stream._on_data(event.data)
                if not self._reading_paused and (
                    stream._buffered > self._stream_read_buffer
                    or self._unread_total > self._connection_read_buffer
                ):
                    self._reading_paused = True
                    self.raw.pause_reading()
            elif isinstance(event, SendWindowOpened):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream._on_window()
            elif isinstance(event, StreamOpened):
                self._accept_stream(event.stream_id)
            elif isinstance(event, StreamEnded):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream._on_eof()
            elif isinstance(event, StreamResetEvent):
                stream = streams.pop(event.stream_id, None)
                if stream is not None:
                    self._unread_total -= stream._unacked
                    stream._on_error(StreamReset("stream reset by remote"))
            elif isinstance(event, PongReceived):
                fut = self._pings.pop(event.opaque, None)
                if fut is not None and not fut.done():
                    fut.set_result(None)
            elif isinstance(event, GoAwayReceived):
                self.remote_go_away = True
            # PingReceived: the core already queued the answer.

    def _accept_stream(self, stream_id: int) -> None:
        self._accepted_in_chunk = True
        stream = Stream(self, stream_id, initiator=False)
        self.streams[stream_id] = stream
        self._dispatch_stream(stream)

    def _dispatch_stream(self, stream: Stream) -> None:
        try:
            self._on_stream(stream)
        except Exception:
            log.exception("stream handler dispatch failed")
            self._reset(stream)

    # ----------------------------------------------------- stream -> core
    def open_stream(self) -> Stream:
        """Open an outbound stream (no protocol negotiated yet)."""
        if self._closed:
            raise ClosedError("connection is closed")
        stream_id = self._core.open_stream()
        stream = Stream(self, stream_id, initiator=True)
        self.streams[stream_id] = stream
        self._flush_soon()
        return stream

    def _send(self, stream: Stream, data: Buffer) -> int:
        if self._closed:
            raise self._stream_error()
        taken = self._core.send_data(stream.stream_id, data)
        if taken:
            self._unflushed += taken
            if self._unflushed >= FLUSH_THRESHOLD:
                self._flush()
            else:
                self._flush_soon()
        return taken

    def _consumed(self, stream: Stream, n: int) -> None:
        if self._closed:
            return
        self._unread_total -= n
        self._core.acknowledge(stream.stream_id, n)
        self._flush_soon()
        if self._reading_paused and (
            self._unread_total <= self._connection_read_buffer // 2
            and all(s._buffered <= self._stream_read_buffer for s in self.streams.values())
        ):
            self._reading_paused = False
            self.raw.resume_reading()

    def _close_write(self, stream: Stream) -> None:
        if self._closed:
            return
        self._core.close_stream(stream.stream_id)
        self._flush_soon()

    def _reset(self, stream: Stream) -> None:
        if self.streams.pop(stream.stream_id, None) is not None:
            self._unread_total -= stream._unacked
            self.last_activity = self._loop.time()
        if self._closed:
            return
        try:
            self._core.reset_stream(stream.stream_id)
        except PeerwireError:
            return
        self._flush_soon()

    def _maybe_forget(self, stream: Stream) -> None:
        if stream._write_closed and (stream._read_eof or stream._read_closed):
            # Bytes still buffered stay counted until read (``_consumed``).
            if self.streams.pop(stream.stream_id, None) is not None:
                # Idle time counts from the last stream's end (the host's reaper
                # relies on it: a connection it saw busy cannot expire sooner
                # than a timeout after that look).
                self.last_activity = self._loop.time()

    def _stream_error(self) -> BaseException:
        exc = ConnectionLost("connection closed")
        exc.__cause__ = self._close_exc
        return exc

    # ------------------------------------------------------------ writing
    def _flush_soon(self) -> None:
        if not self._flush_scheduled and not self._closed:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._unflushed = 0
        if self._closed:
            return
        chunks = self._core.data_to_send()
        if not chunks:
            return
        try:
            if self._secure is not None:
                self.raw.writelines(self._secure.encrypt_chunks(chunks))
            else:
                self.raw.writelines(chunks)
        except PeerwireError as exc:
            self._fail(exc)

    def _write_backlogged(self) -> bool:
        return self.raw.write_paused

    async def _drain(self) -> None:
        if self._closed:
            raise self._stream_error()
        if not self.raw.write_paused:
            return
        fut = self._loop.create_future()
        self._drain_waiters.append(fut)
        await fut

    def _wake_drainers(self, exc: BaseException | None) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for fut in waiters:
            if not fut.done():
                if exc is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(exc)

    # --------------------------------------------------------------- ping
    async def ping(self) -> float:
        """Muxer-level ping (yamux); returns the round-trip time in seconds."""
        if self._closed:
            raise self._stream_error()
        opaque = self._next_ping
        self._next_ping = (self._next_ping + 1) & 0xFFFFFFFF or 1
        fut = self._loop.create_future()
        self._pings[opaque] = fut
        start = time.perf_counter()  # uvloop's loop.time() only has ms resolution
        self._core.ping(opaque)
        self._flush_soon()
        await fut
        return time.perf_counter() - start
