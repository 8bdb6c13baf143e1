"""mplex (``/mplex/6.7.0``) as a sans-IO :class:`~peerwire.mux.events.MuxerCore`.

Wire format (libp2p/specs ``mplex/README.md``): every frame is
``uvarint((stream_id << 3) | flag) uvarint(length) data``. Flags::

    0 NewStream         (data = stream name)
    1 MessageReceiver   2 MessageInitiator
    3 CloseReceiver     4 CloseInitiator
    5 ResetReceiver     6 ResetInitiator

The *Initiator* flags are sent by the side that opened the stream, the
*Receiver* flags by the other side. Each peer numbers its own streams from 0
upwards (go-mplex and js-libp2p do so and ignore the spec's odd/even rule), so
a wire id alone is ambiguous: a stream is identified by the pair (wire id, who
opened it), and the flag's low bit tells which: an odd flag comes from the
receiver, i.e. concerns a stream *we* opened.

**Opaque ids.** :class:`MuxerCore` hands out plain ints, unique for the
session's lifetime. Ours are:

* streams we open: ``(wire_id << 1) | 1`` -- odd, and the wire id is visible;
* streams the remote opens: ``n << 1`` where ``n`` counts the remote streams
  accepted so far (0, 1, 2, ...) -- even.

Remote ids are not derived from the wire id because mplex lets a peer reuse
a wire id once the old stream is gone; the counter keeps our ids unique even
then, as :class:`MuxerCore` promises.
:meth:`MplexSession.wire_stream` maps an opaque id back to the wire.

**No flow control.** mplex has no windows, so ``send_data`` always takes every
byte and :class:`SendWindowOpened` is never emitted. To bound memory we count,
per stream, bytes delivered in :class:`DataReceived` but not yet passed to
``acknowledge``; a peer pushing one stream past ``max_stream_buffer`` gets
that stream reset (js-libp2p resets past a buffer size too; go-mplex resets a
stream whose reader stalls). The asyncio adapter stops reading the socket once
a stream's unread bytes pass its own, smaller threshold, and TCP then slows
the peer down; so this limit is a backstop that well-behaved peers never reach.

**Half-close.** Close ends one direction: a remote Close yields
:class:`StreamEnded`, our ``close_stream`` sends Close; when both directions are
closed, or on a reset either way, the stream is forgotten. Frames for
forgotten or unknown streams are ignored (they are normal after a reset).

mplex has neither ping nor go-away: :meth:`MplexSession.ping` raises
:class:`UsageError`, :meth:`MplexSession.go_away` only stops us opening or
accepting streams.

Session-fatal errors (raised from ``receive_data``): a frame longer than
``max_message_size`` (:class:`RemoteLimitExceeded`, checked from the header
before the body is buffered), flag 7, a NewStream for a wire id still in use,
a malformed varint (:class:`ProtocolError`). go-mplex merely skips a frame
with flag 7; no implementation sends one, so we treat it as a broken peer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..errors import (
    ClosedError,
    LimitExceeded,
    ProtocolError,
    RemoteLimitExceeded,
    StreamReset,
    UsageError,
)
from ..varint import decode_uvarint, encode_uvarint
from .events import DataReceived, MuxEvent, StreamEnded, StreamOpened
from .events import StreamReset as StreamResetEvent

log = logging.getLogger("peerwire.mux.mplex")

PROTOCOL_ID = "/mplex/6.7.0"
"""The multistream-select protocol id of mplex."""

NEW_STREAM = 0
MESSAGE_RECEIVER = 1
MESSAGE_INITIATOR = 2
CLOSE_RECEIVER = 3
CLOSE_INITIATOR = 4
RESET_RECEIVER = 5
RESET_INITIATOR = 6

_RESET_MEMORY = 1024
"""How many recently reset streams we remember, to answer ``send_data`` with
:class:`StreamReset` rather than :class:`ClosedError`. Oldest are dropped."""

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True, kw_only=True)
class MplexConfig:
    """Limits of one mplex session. Every field is a safety bound against the peer.

    ``max_streams``: streams open at once, counted separately for streams we
    open (beyond it ``open_stream`` raises :class:`LimitExceeded`) and streams
    the remote opens (beyond it their NewStream is answered with a reset), as
    js-libp2p does, so a greedy peer cannot use up our own quota.

    ``max_message_size``: largest frame body accepted (a larger incoming frame
    kills the session) and sent (outgoing data is split into frames of at most
    this size). The spec and go-mplex use 1 MiB; exceeding a peer's limit kills
    the connection, so raise it only if every peer agrees.

    ``max_stream_buffer``: bytes delivered on one stream but not yet
    acknowledged before we reset that stream; mplex has no flow control, this
    is what bounds our memory. Keep it at least ``max_message_size``.
    """

    max_streams: int = 1024
    max_message_size: int = 1 << 20
    max_stream_buffer: int = 4 << 20

    def __post_init__(self) -> None:
        if self.max_streams < 0:
            raise UsageError("max_streams must be >= 0")
        if self.max_message_size < 1:
            raise UsageError("max_message_size must be >= 1")
        if self.max_stream_buffer < 1:
            raise UsageError("max_stream_buffer must be >= 1")


DEFAULT_CONFIG = MplexConfig()


class _Stream:
    """Per-stream state; ``key`` is ``(wire_id << 1) | we_initiated``."""

    __slots__ = (
        "initiated",
        "key",
        "local_closed",
        "msg_header",
        "remote_closed",
        "sid",
        "unacked",
        "wire_id",
    )

    def __init__(self, sid: int, wire_id: int, initiated: bool) -> None:
        self.sid = sid
        self.wire_id = wire_id
        self.initiated = initiated
        self.key = (wire_id << 1) | initiated
        self.local_closed = False
        self.remote_closed = False
        self.unacked = 0
        self.msg_header = encode_uvarint(
            (wire_id << 3) | (MESSAGE_INITIATOR if initiated else MESSAGE_RECEIVER)
        )

    def control_frame(self, initiator_flag: int) -> bytes:
        """A body-less Close/Reset frame, with the flag variant for our role."""
        flag = initiator_flag if self.initiated else initiator_flag - 1
        return encode_uvarint((self.wire_id << 3) | flag) + b"\x00"


class MplexSession:
    """One mplex session (one connection), as a sans-IO core.

    ``is_client`` records which side dialled the connection; mplex does not
    need it for stream numbering, but it is kept for introspection.
    """

    __slots__ = (
        "_buf",
        "_by_id",
        "_by_wire",
        "_config",
        "_failed",
        "_going_away",
        "_local_count",
        "_max_buffer",
        "_max_message",
        "_next_local",
        "_next_remote",
        "_out",
        "_recent_resets",
        "_remote_count",
        "is_client",
    )

    def __init__(self, *, is_client: bool, config: MplexConfig = DEFAULT_CONFIG) -> None:
        self.is_client = is_client
        self._config = config
        self._max_message = config.max_message_size
        self._max_buffer = config.max_stream_buffer
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._by_wire: dict[int, _Stream] = {}
        self._by_id: dict[int, _Stream] = {}
        self._recent_resets: dict[int, None] = {}
        self._next_local = 0
        self._next_remote = 0
        self._local_count = 0
        self._remote_count = 0
        self._going_away = False
        self._failed: ProtocolError | None = None

    @property
    def config(self) -> MplexConfig:
        return self._config

    def wire_stream(self, stream_id: int) -> tuple[int, bool]:
        """Return ``(wire id, opened by us)`` for a live stream (for logs and tests)."""
        st = self._by_id.get(stream_id)
        if st is None:
            raise UsageError(f"no live mplex stream {stream_id}")
        return st.wire_id, st.initiated

    # ------------------------------------------------------------ receiving
    def receive_data(self, data: Buffer) -> list[MuxEvent]:
        """Parse frames from the connection; return the events they complete."""
        if self._failed is not None:
            raise ProtocolError("mplex session already failed") from self._failed
        events: list[MuxEvent] = []
        buf = self._buf
        try:
            if buf:
                buf += data
                with memoryview(buf) as view:
                    used = self._parse(view, events)
                del buf[:used]
            else:
                with memoryview(data) as view:
                    flat = view if view.format == "B" and view.ndim == 1 else view.cast("B")
                    used = self._parse(flat, events)
                    if used < len(flat):
                        buf += flat[used:]
        except ProtocolError as exc:
            self._failed = exc
            raise
        return events

    def _parse(self, view: memoryview, events: list[MuxEvent]) -> int:
        """Handle every complete frame in ``view``; return the bytes consumed."""
        pos = 0
        end = len(view)
        max_message = self._max_message
        while pos < end:
            b = view[pos]
            if b < 0x80:
                header, p = b, pos + 1
            else:
                got = decode_uvarint(view, pos)
                if got is None:
                    break
                header, p = got
            flag = header & 7
            if flag == 7:
                raise ProtocolError(f"mplex frame with unknown flag 7 (stream {header >> 3})")
            if p >= end:
                break
            b = view[p]
            if b < 0x80:
                length, start = b, p + 1
            else:
                got = decode_uvarint(view, p)
                if got is None:
                    break
                length, start = got
            if length > max_message:
                raise RemoteLimitExceeded(
                    f"mplex frame of {length} bytes exceeds max_message_size {max_message}",
                    limit_name="max_message_size",
                    limit=max_message,
                    value=length,
                )
            stop = start + length
            if stop > end:
                break
            self._on_frame(header >> 3, flag, view, start, stop, events)
            pos = stop
        return pos

    def _on_frame(
        self,
        wire_id: int,
        flag: int,
        view: memoryview,
        start: int,
        stop: int,
        events: list[MuxEvent],
    ) -> None:
        if flag == NEW_STREAM:
            self._on_new_stream(wire_id, events)
            return
        st = self._by_wire.get((wire_id << 1) | (flag & 1))
        if st is None:
            log.debug("mplex: flag %d for unknown stream %d ignored", flag, wire_id)
            return
        if flag <= MESSAGE_INITIATOR:
            n = stop - start
            if st.remote_closed:
                log.debug("mplex: data on stream %d after its close ignored", wire_id)
            elif st.unacked + n > self._max_buffer:
                log.warning(
                    "mplex: peer overran max_stream_buffer (%d) on stream %d; resetting it",
                    self._max_buffer,
                    wire_id,
                )
                self._out.append(st.control_frame(RESET_INITIATOR))
                self._forget(st, reset=True)
                events.append(StreamResetEvent(st.sid))
            elif n:
                st.unacked += n
                events.append(DataReceived(st.sid, bytes(view[start:stop])))
        elif flag <= CLOSE_INITIATOR:
            if not st.remote_closed:
                st.remote_closed = True
                events.append(StreamEnded(st.sid))
                if st.local_closed:
                    self._forget(st, reset=False)
        else:
            self._forget(st, reset=True)
            events.append(StreamResetEvent(st.sid))

    def _on_new_stream(self, wire_id: int, events: list[MuxEvent]) -> None:
        key = wire_id << 1
        if key in self._by_wire:
            raise ProtocolError(f"mplex NewStream for stream {wire_id}, which is still open")
        if self._going_away or self._remote_count >= self._config.max_streams:
            if self._going_away:
                log.debug("mplex: refusing remote stream %d after go_away", wire_id)
            else:
                log.info(
                    "mplex: remote exceeded max_streams (%d); resetting its stream %d",
                    self._config.max_streams,
                    wire_id,
                )
            self._out.append(encode_uvarint((wire_id << 3) | RESET_RECEIVER) + b"\x00")
            return
        st = _Stream(self._next_remote << 1, wire_id, initiated=False)
        self._next_remote += 1
        self._by_wire[key] = st
        self._by_id[st.sid] = st
        self._remote_count += 1
        events.append(StreamOpened(st.sid))

    def _forget(self, st: _Stream, *, reset: bool) -> None:
        del self._by_wire[st.key]
        del self._by_id[st.sid]
        if st.initiated:
            self._local_count -= 1
        else:
            self._remote_count -= 1
        if reset:
            resets = self._recent_resets
            resets[st.sid] = None
            if len(resets) > _RESET_MEMORY:
                del resets[next(iter(resets))]

    # -------------------------------------------------------------- sending
    def data_to_send(self) -> list[bytes]:
        """Return (and forget) queued output; the chunks concatenated form the wire bytes.

        A large payload is its own chunk (never copied twice), so one frame may
        span two chunks.
        """
        out = self._out
        self._out = []
        return out

    def _issued(self, stream_id: int) -> bool:
        if stream_id < 0:
            return False
        if stream_id & 1:
            return (stream_id >> 1) < self._next_local
        return (stream_id >> 1) < self._next_remote

    def _live(self, stream_id: int) -> _Stream | None:
        st = self._by_id.get(stream_id)
        if st is None and not self._issued(stream_id):
            raise UsageError(f"unknown mplex stream id {stream_id}")
        return st

    def open_stream(self) -> int:
        """Open a stream: queue NewStream named by its decimal wire id, as go and js do."""
        if self._going_away:
            raise ClosedError("mplex session is going away; no new streams")
        if self._failed is not None:
            raise ClosedError("mplex session failed")
        limit = self._config.max_streams
        if self._local_count >= limit:
            raise LimitExceeded(
                f"{limit} outbound mplex streams already open",
                limit_name="max_streams",
                limit=limit,
                value=self._local_count + 1,
            )
        wire_id = self._next_local
        self._next_local += 1
        st = _Stream((wire_id << 1) | 1, wire_id, initiated=True)
        self._by_wire[st.key] = st
        self._by_id[st.sid] = st
        self._local_count += 1
        name = str(wire_id).encode()
        self._out.append(encode_uvarint(wire_id << 3) + encode_uvarint(len(name)) + name)
        return st.sid

    def send_data(self, stream_id: int, data: Buffer) -> int:
        """Queue all of ``data`` (split into frames of at most ``max_message_size``)."""
        st = self._live(stream_id)
        if st is None:
            if stream_id in self._recent_resets:
                raise StreamReset(f"mplex stream {stream_id} was reset")
            raise ClosedError(f"mplex stream {stream_id} is closed")
        if st.local_closed:
            raise ClosedError(f"mplex stream {stream_id} is closed for writing")
        total = len(data)
        if not total:
            return 0
        out = self._out
        header = st.msg_header
        limit = self._max_message
        if total <= limit:
            if total <= 1024:
                out.append(header + encode_uvarint(total) + bytes(data))
            else:
                out.append(header + encode_uvarint(total))
                out.append(bytes(data))
            return total
        with memoryview(data) as view:
            flat = view if view.format == "B" and view.ndim == 1 else view.cast("B")
            for pos in range(0, total, limit):
                chunk = bytes(flat[pos : pos + limit])
                out.append(header + encode_uvarint(len(chunk)))
                out.append(chunk)
        return total

    def close_stream(self, stream_id: int) -> None:
        """Half-close our side (Close frame). Idempotent; a no-op on dead streams."""
        st = self._live(stream_id)
        if st is None or st.local_closed:
            return
        st.local_closed = True
        self._out.append(st.control_frame(CLOSE_INITIATOR))
        if st.remote_closed:
            self._forget(st, reset=False)

    def reset_stream(self, stream_id: int) -> None:
        """Abort the stream both ways (Reset frame). A no-op on dead streams."""
        st = self._live(stream_id)
        if st is None:
            return
        self._out.append(st.control_frame(RESET_INITIATOR))
        self._forget(st, reset=True)

    def acknowledge(self, stream_id: int, n: int) -> None:
        """The application consumed ``n`` bytes; they no longer count against the buffer.

        Lenient on purpose: acknowledging a dead stream, or more than was
        delivered (the adapter re-reads negotiation leftovers), is harmless.
        """
        if n < 0:
            raise UsageError("acknowledge needs n >= 0")
        st = self._by_id.get(stream_id)
        if st is not None:
            st.unacked = max(0, st.unacked - n)

    def ping(self, opaque: int) -> None:
        """mplex has no ping frame."""
        raise UsageError("mplex has no ping")

    def go_away(self, code: int = 0) -> None:
        """mplex has no go-away frame: just stop opening and accepting streams locally."""
        self._going_away = True


__all__ = [
    "CLOSE_INITIATOR",
    "CLOSE_RECEIVER",
    "DEFAULT_CONFIG",
    "MESSAGE_INITIATOR",
    "MESSAGE_RECEIVER",
    "NEW_STREAM",
    "PROTOCOL_ID",
    "RESET_INITIATOR",
    "RESET_RECEIVER",
    "MplexConfig",
    "MplexSession",
]
