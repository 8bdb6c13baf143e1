"""A multiplexed stream as the user sees it: ``read``/``write`` with backpressure.

The stream holds no protocol logic. Bytes arrive from the session adapter
(:mod:`peerwire.mux.session`), which got them from a sans-IO muxer core; writes
go into that core, which decides how much the remote's window allows. A writer
that outruns the remote's window waits in :meth:`Stream.write` until a window
update arrives: a slow reader slows the writer down, it never kills the stream.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import (
    ClosedError,
    ConnectionLost,
    IncompleteReadError,
    NegotiationError,
    PeerwireError,
    StreamReset,
    UsageError,
)

if TYPE_CHECKING:
    from ..identity.peer_id import PeerId
    from ..negotiate.multistream import MultistreamDialer
    from .session import MuxedConnection

Buffer = bytes | bytearray | memoryview


class Stream:
    """One bidirectional, flow-controlled byte stream inside a muxed connection.

    ``protocol`` is the protocol id negotiated with multistream-select (set by
    the host before the stream reaches user code).
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_error",
        "_negotiator",
        "_preacked",
        "_push",
        "_push_end",
        "_push_paused",
        "_read_closed",
        "_read_eof",
        "_read_waiter",
        "_session",
        "_window_waiter",
        "_write_closed",
        "initiator",
        "protocol",
        "stream_id",
    )

    def __init__(self, session: MuxedConnection, stream_id: int, *, initiator: bool) -> None:
        self._session = session
        self.stream_id = stream_id
        self.initiator = initiator
        self.protocol: str | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._preacked = 0
        self._read_eof = False
        self._read_closed = False
        self._write_closed = False
        self._error: BaseException | None = None
        self._read_waiter: asyncio.Future[None] | None = None
        self._window_waiter: asyncio.Future[None] | None = None
        self._push: Callable[[bytes], None] | None = None
        self._push_end: Callable[[BaseException | None], None] | None = None
        self._push_paused = False
        self._negotiator: MultistreamDialer | None = None

    # ------------------------------------------------------------------ info
    @property
    def remote_peer(self) -> PeerId:
        return self._session.remote_peer

    @property
    def connection(self) -> MuxedConnection:
        return self._session

    @property
    def is_closed(self) -> bool:
        """True when neither direction can carry data any more."""
        return self._error is not None or (
            self._write_closed and (self._read_eof or self._read_closed)
        )

    def __repr__(self) -> str:
        return (
            f"<Stream {self.stream_id} {self.protocol or '?'} peer={self._session.remote_peer} "
            f"{'closed' if self.is_closed else 'open'}>"
        )

    # ------------------------------------------------------- lazy negotiation
    def _negotiate_lazily(self, dialer: MultistreamDialer) -> None:
        """Send ``dialer``'s proposal now and check the listener's echo as it arrives.

        The caller may write application bytes at once: they travel behind the
        proposal, saving the round trip of waiting for the echo (go-libp2p does
        the same when the peerstore says the protocol is supported). Until the
        echo is in, received bytes go to ``dialer``; a refusal (``na``) or a
        malformed answer fails the stream with that error and resets it.
        """
        self._negotiator = dialer
        self._session._send(self, dialer.data_to_send())

    def _negotiation_input(self, data: bytes) -> bytes | None:
        """Feed the pending lazy negotiation; the application bytes behind the echo.

        None when the stream failed (or nothing is left for the application).
        """
        dialer = self._negotiator
        assert dialer is not None
        try:
            dialer.receive_data(data)
        except PeerwireError as exc:
            self._negotiator = None
            self._session._consumed(self, len(data))
            self._fail_negotiation(exc)
            return None
        if dialer.lazy_pending:
            self._session._consumed(self, len(data))
            return None
        self._negotiator = None
        rest = dialer.take_leftover()
        if len(rest) < len(data):
            self._session._consumed(self, len(data) - len(rest))
        return rest or None

    def _fail_negotiation(self, exc: BaseException) -> None:
        if self._error is None:
            self._session._reset(self)
            self._on_error(exc)

    # ------------------------------------------------------- session -> stream
    def _on_data(self, data: bytes) -> None:
        if self._negotiator is not None:
            rest = self._negotiation_input(data)
            if rest is None:
                return
            data = rest
        if self._read_closed:
            # We said we will not read any more: discard, but give the window back.
            self._session._consumed(self, len(data))
            return
        push = self._push
        if push is not None and not self._push_paused:
            self._session._consumed(self, len(data))
            push(data)
            return
        self._chunks.append(data)
        self._buffered += len(data)
        self._wake_reader()

    def _on_eof(self) -> None:
        if self._negotiator is not None:
            self._negotiator = None
            self._fail_negotiation(
                NegotiationError(f"stream ended before the listener accepted {self.protocol!r}")
            )
            return
        self._read_eof = True
        self._wake_reader()
        if self._push_end is not None and not self._chunks and not self._push_paused:
            end, self._push_end = self._push_end, None
            end(None)
        self._session._maybe_forget(self)

    def _on_error(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._chunks.clear()
        self._buffered = 0
        self._preacked = 0
        self._wake_reader()
        self._wake_writer()
        if self._push_end is not None:
            end, self._push_end = self._push_end, None
            self._push = None
            end(exc)

    # ---------------------------------------------------------- push mode
    def set_push_receiver(
        self,
        on_data: Callable[[bytes], None],
        on_end: Callable[[BaseException | None], None],
    ) -> None:
        """Deliver incoming bytes by callback instead of :meth:`read` (the fast path).

        ``on_data(chunk)`` runs inside the connection's receive callback for
        every chunk, in order (already-buffered bytes first, on the next loop
        pass). Bytes are acknowledged to the muxer as soon as they are handed
        over, unless :meth:`pause_push` was called: then they are buffered
        unacknowledged, the remote's send window runs out and its writer waits.
        ``on_end(None)`` reports the remote's half-close, ``on_end(exc)`` a reset
        or a lost connection.
        """
        self._push = on_data
        self._push_end = on_end
        if self._chunks or self._read_eof or self._error is not None:
            self._session._loop.call_soon(self._replay_push)

    def pause_push(self) -> None:
        """Stop delivering (and acknowledging) bytes until :meth:`resume_push`."""
        self._push_paused = True

    def resume_push(self) -> None:
        """Deliver what was buffered while paused, then resume direct delivery."""
        if self._push_paused:
            self._push_paused = False
            self._session._loop.call_soon(self._replay_push)

    def _replay_push(self) -> None:
        push = self._push
        while push is not None and self._chunks and not self._push_paused:
            chunk = self._chunks.popleft()
            self._buffered -= len(chunk)
            self._release(len(chunk))
            push(chunk)
            push = self._push
        if self._push_end is not None and not self._chunks and not self._push_paused:
            if self._error is not None:
                end, self._push_end = self._push_end, None
                end(self._error)
            elif self._read_eof:
                end, self._push_end = self._push_end, None
                end(None)

    def _on_window(self) -> None:
        self._wake_writer()

    def _wake_reader(self) -> None:
        waiter = self._read_waiter
        if waiter is not None:
            self._read_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter = self._window_waiter
        if waiter is not None:
            self._window_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    @property
    def _unacked(self) -> int:
        """Buffered bytes the session still counts as unread (not yet acknowledged)."""
        return self._buffered - self._preacked

    def _unread(self, data: bytes) -> None:
        """Put bytes back in front of the buffer (leftovers of protocol negotiation)."""
        if data:
            self._chunks.appendleft(data)
            self._buffered += len(data)
            self._preacked += len(data)  # already acknowledged to the muxer once

    # ------------------------------------------------------------- reading
    async def _wait_readable(self) -> None:
        while not self._chunks and not self._read_eof:
            if self._error is not None:
                raise self._error
            if self._read_closed:
                raise ClosedError("stream closed for reading")
            waiter = self._session._loop.create_future()
            self._read_waiter = waiter
            await waiter

    def _take(self, n: int) -> bytes:
        """Pop up to ``n`` buffered bytes (n < 0: everything buffered)."""
        chunks = self._chunks
        first = chunks[0]
        if n < 0 or n >= self._buffered:
            if len(chunks) == 1:
                out = first
                chunks.clear()
            else:
                out = b"".join(chunks)
                chunks.clear()
        elif len(first) > n:
            out = first[:n]
            chunks[0] = first[n:]
        else:
            parts = []
            need = n
            while need and chunks:
                head = chunks[0]
                if len(head) <= need:
                    parts.append(chunks.popleft())
                    need -= len(head)
                else:
                    parts.append(head[:need])
                    chunks[0] = head[need:]
                    need = 0
            out = b"".join(parts)
        self._buffered -= len(out)
        self._release(len(out))
        return out

    def _release(self, n: int) -> None:
        """Tell the session ``n`` buffered bytes are gone (minus pushed-back ones)."""
        if self._preacked:
            skip = min(self._preacked, n)
            self._preacked -= skip
            n -= skip
        if n:
            self._session._consumed(self, n)

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (``n=-1``: until end of stream). ``b""`` means end of stream.

        Raises :class:`StreamReset` / :class:`ConnectionLost` if the stream broke, and
        :class:`ClosedError` after :meth:`close`.
        """
        if n == 0:
            return b""
        if n < 0:
            parts: list[bytes] = []
            while True:
                await self._wait_readable()
                if not self._chunks:
                    return b"".join(parts)
                parts.append(self._take(-1))
        await self._wait_readable()
        if not self._chunks:
            return b""
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes; :class:`IncompleteReadError` if the stream ends first."""
        if n < 0:
            raise UsageError("readexactly needs n >= 0")
        parts: list[bytes] = []
        need = n
        while need:
            await self._wait_readable()
            if not self._chunks:
                got = b"".join(parts)
                raise IncompleteReadError(got, n)
            chunk = self._take(need)
            parts.append(chunk)
            need -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # ------------------------------------------------------------- writing
    def _check_writable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._write_closed:
            raise ClosedError("stream closed for writing")

    async def write(self, data: Buffer) -> None:
        """Send ``data``; waits while the remote's receive window is full (backpressure)."""
        self._check_writable()
        total = len(data)
        if not total:
            return
        session = self._session
        sent = session._send(self, data)
        while sent < total:
            self._check_writable()
            waiter = session._loop.create_future()
            self._window_waiter = waiter
            await waiter
            self._check_writable()
            sent += session._send(self, memoryview(data)[sent:])
        if session._write_backlogged():
            await session._drain()

    def write_nowait(self, data: Buffer) -> int:
        """Queue as much of ``data`` as the remote's window allows right now; return that count.

        For callers that cannot await (callbacks). The caller keeps the rest and
        sends it later with :meth:`write`.
        """
        self._check_writable()
        if not len(data):
            return 0
        return self._session._send(self, data)

    @property
    def write_backlogged(self) -> bool:
        """True while the connection's socket buffer is above its high-water mark."""
        return self._session._write_backlogged()

    async def drain(self) -> None:
        """Wait until the connection's write buffer is below its high-water mark."""
        await self._session._drain()

    async def close_write(self) -> None:
        """Half-close: tell the remote we will send nothing more. Reading still works."""
        if self._write_closed or self._error is not None:
            return
        self._write_closed = True
        self._session._close_write(self)
        self._session._maybe_forget(self)

    async def close(self) -> None:
        """Close both directions gracefully: flush what was written, discard unread input."""
        await self.close_write()
        if not self._read_closed:
            self._read_closed = True
            pending = self._buffered
            self._chunks.clear()
            self._buffered = 0
            if pending:
                self._release(pending)
            self._wake_reader()
        self._session._maybe_forget(self)

    async def reset(self) -> None:
        """Abort the stream in both directions at once (the remote sees a reset)."""
        self.reset_nowait()

    def reset_nowait(self) -> None:
        """:meth:`reset` for callers that cannot await (it never waits anyway)."""
        if self._error is not None:
            return
        self._session._reset(self)
        self._error = StreamReset("stream reset locally")
        self._chunks.clear()
        self._buffered = 0
        self._preacked = 0
        self._wake_reader()
        self._wake_writer()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if exc_info[0] is not None and not isinstance(exc_info[1], ConnectionLost):
            await self.reset()
        else:
            await self.close()
