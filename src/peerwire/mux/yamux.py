"""A sans-IO yamux session (hashicorp/yamux ``spec.md``), compatible with go-yamux.

:class:`YamuxSession` implements :class:`peerwire.mux.events.MuxerCore`: feed it
the decrypted connection bytes with :meth:`~YamuxSession.receive_data`, collect
the frames it wants written with :meth:`~YamuxSession.data_to_send`. It never
does I/O and never reads a clock (yamux has no timers the core must own; the
adapter schedules keep-alive pings).

Choices where the spec is silent, made to behave like go-yamux (libp2p/go-yamux
v5), which most libp2p peers run:

* **Opening.** A stream is opened with a WINDOW_UPDATE carrying SYN (never a
  DATA frame) and a delta of ``receive_window - 256 KiB``, so our effective
  window is ``receive_window`` from the first byte. A remote SYN is answered at
  once with WINDOW_UPDATE + ACK and the same extra delta. go-yamux sends its ACK
  when the application accepts; here the core has no accept queue: the adapter
  owns the accept backlog and should :meth:`~YamuxSession.reset_stream` streams
  it cannot queue, exactly as go-yamux RSTs when its backlog is full.
* **Refusing.** A SYN beyond ``max_streams``, or after we sent GO_AWAY, is
  answered with WINDOW_UPDATE + RST and is not an error for the session. A SYN
  with our parity, on stream 0, or for a stream that is still live is a
  session-fatal :class:`ProtocolError` (go-yamux: "both endpoints are clients",
  "duplicate stream").
* **Closing.** FIN and RST go out as zero-delta WINDOW_UPDATE frames, as
  go-yamux sends them. go-yamux puts an error code in the length of a RST
  window update, so an incoming RST's length is never applied as a delta. A
  stream is forgotten once both sides sent FIN, or at the first RST.
* **Unknown streams.** DATA or WINDOW_UPDATE without SYN for a stream we do not
  know (we reset it, it closed, we refused it, or it never existed) is dropped
  silently and no RST is sent, like go-yamux. The peer may legitimately have
  such frames in flight, so no record of old ids is needed; a dropped DATA
  body may still not exceed ``receive_window``, the most we ever grant.
* **Flow control.** Incoming DATA beyond the credit we granted is a
  session-fatal :class:`RemoteLimitExceeded` (``limit_name="receive_window"``),
  checked from the header alone, before the body is buffered. Credit is given
  back in one WINDOW_UPDATE once the application acknowledged at least half
  the window (go-yamux's threshold); no updates are sent after the remote's
  FIN. :class:`SendWindowOpened` is emitted only when a stream's send window
  goes from 0 to positive while our side is open: a short ``send_data`` always
  leaves the window at 0, so that is exactly when a writer can be waiting.
  A send window pushed past 2**32 - 1 is a :class:`ProtocolError`.
* **GO_AWAY** is directional: the sender accepts no new streams. After the
  remote's GO_AWAY our :meth:`~YamuxSession.open_stream` raises
  :class:`ClosedError` but existing streams carry on, and the remote may still
  open streams to us (hashicorp/yamux; go-yamux ends the whole session, which
  an adapter can still do on :class:`GoAwayReceived`).
* **Session errors.** Any :class:`ProtocolError` from :meth:`receive_data` kills
  the session: a GO_AWAY(protocol error) is queued (go-yamux does the same for
  window and duplicate-stream errors), all streams are forgotten, later
  ``receive_data`` / ``open_stream`` / ``send_data`` / ``ping`` raise
  :class:`ClosedError`, and close/reset/acknowledge become no-ops. Events of
  earlier frames in the failing ``receive_data`` call are dropped with it.
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
from .events import (
    DataReceived,
    GoAwayReceived,
    MuxEvent,
    PingReceived,
    PongReceived,
    SendWindowOpened,
    StreamEnded,
    StreamOpened,
)
from .events import (
    StreamReset as StreamResetEvent,
)
from .yamux_frame import (
    FLAG_ACK,
    FLAG_FIN,
    FLAG_RST,
    FLAG_SYN,
    GO_AWAY_PROTOCOL_ERROR,
    HEADER,
    HEADER_SIZE,
    INITIAL_WINDOW,
    MAX_U32,
    PROTOCOL_VERSION,
    TYPE_DATA,
    TYPE_GO_AWAY,
    TYPE_PING,
    TYPE_WINDOW_UPDATE,
    type_name,
)

_log = logging.getLogger(__name__)

_pack = HEADER.pack
_unpack_from = HEADER.unpack_from


@dataclass(frozen=True, slots=True, kw_only=True)
class YamuxConfig:
    """Limits and tuning of one yamux session. Every field has a safe default."""

    max_streams: int = 1024
    """Concurrently open streams, both directions together. Opening one more
    locally raises :class:`LimitExceeded`; a remote SYN beyond it is answered
    with RST (the session lives on). go-yamux allows 1000 incoming streams."""

    receive_window: int = 1 << 20
    """Per-stream receive window we advertise, in bytes: the most one stream can
    make us buffer before the application reads. At least the spec's 256 KiB
    (the peer assumes that much before our first WINDOW_UPDATE); the extra is
    granted with our SYN/ACK. 1 MiB keeps a 64 KiB-frame sender busy across a
    few round trips without letting many streams pin much memory."""

    max_frame_payload: int = 64 * 1024
    """Largest DATA payload we send in one frame, so one busy stream cannot hold
    the connection for long and a frame fits one Noise message after batching
    (go-yamux uses the same 64 KiB)."""

    def __post_init__(self) -> None:
        if self.max_streams < 1:
            raise UsageError(f"max_streams must be >= 1, got {self.max_streams}")
        if not INITIAL_WINDOW <= self.receive_window <= MAX_U32:
            raise UsageError(
                f"receive_window must be in [{INITIAL_WINDOW}, {MAX_U32}],"
                f" got {self.receive_window}"
            )
        if not 1 <= self.max_frame_payload <= MAX_U32:
            raise UsageError(f"max_frame_payload must be in [1, {MAX_U32}]")


@dataclass(frozen=True, slots=True, kw_only=True)
class YamuxStatistics:
    """A snapshot of a session's counters (cheap: none is touched per frame)."""

    open_streams: int
    """Streams currently tracked (not yet fully closed or reset)."""
    streams_opened_locally: int
    """Streams we opened with :meth:`YamuxSession.open_stream`."""
    streams_accepted: int
    """Remote SYNs we accepted."""
    streams_refused: int
    """Remote SYNs answered with RST (``max_streams`` reached or after our GO_AWAY)."""
    frames_ignored: int
    """Frames dropped because their stream is unknown (closed, reset or refused)."""
    local_go_away: bool
    """We sent GO_AWAY (or the session failed)."""
    remote_go_away_code: int | None
    """Code of the remote's last GO_AWAY, ``None`` if it sent none."""


class _Stream:
    """Per-stream flow-control and half-close state (slotted: touched per frame)."""

    __slots__ = ("grant", "local_closed", "recv_credit", "remote_closed", "send_window", "unacked")

    def __init__(self, send_window: int, recv_credit: int) -> None:
        self.send_window = send_window  # bytes we may still send
        self.recv_credit = recv_credit  # bytes the remote may still send us
        self.unacked = 0  # delivered to the application, not yet acknowledged
        self.grant = 0  # acknowledged, not yet returned to the remote as credit
        self.local_closed = False  # we sent FIN
        self.remote_closed = False  # the remote sent FIN


class YamuxSession:
    """One side of a yamux session; see the module docstring for the behaviour."""

    def __init__(self, *, is_client: bool, config: YamuxConfig = YamuxConfig()) -> None:
        self._is_client = is_client
        self._config = config
        # Parity of the ids the *remote* opens: the client opens odd ids.
        self._remote_parity = 0 if is_client else 1
        self._next_id = 1 if is_client else 2
        self._streams: dict[int, _Stream] = {}
        self._out: list[bytes] = []
        # Coalescing: the DATA frame most recently queued, while it is still the
        # last thing in ``_out``. A further send on the same stream grows that
        # frame instead of adding a header, so a burst of small writes reaches
        # the remote as one frame (one parse, one event, one acknowledgement).
        self._tail_sid = -1
        self._tail_hdr = 0
        self._tail_end = -1
        self._tail_len = 0
        self._buf = bytearray()  # an incomplete frame carried over between reads
        self._window = config.receive_window
        self._extra = config.receive_window - INITIAL_WINDOW
        self._threshold = config.receive_window // 2
        self._max_payload = config.max_frame_payload
        self._max_streams = config.max_streams
        # Ids the remote reset, so send_data can say StreamReset rather than
        # ClosedError. Bounded FIFO (dicts keep insertion order).
        self._remote_resets: dict[int, None] = {}
        self._local_go_away = False
        self._remote_go_away: int | None = None
        self._failed: ProtocolError | None = None
        self._opened_locally = 0
        self._accepted = 0
        self._refused = 0
        self._ignored = 0

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[MuxEvent]:
        """Parse connection bytes; return the events of every frame they complete.

        ``data`` is only read during the call (payloads are copied out), so the
        caller may reuse its buffer. Frames may be split anywhere: feeding one
        byte at a time yields the same events as feeding everything at once.
        Raises :class:`ProtocolError` (session-fatal) when the remote broke the
        protocol, :class:`ClosedError` once the session has failed.
        """
        if self._failed is not None:
            raise ClosedError("yamux session failed") from self._failed
        events: list[MuxEvent] = []
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        try:
            end = len(view)
            pos = 0
            buf = self._buf
            if buf:
                pos = self._complete_pending(view, events)
                if buf:  # still incomplete: everything went into buf
                    return events
            if pos < end:
                pos = self._parse(view, pos, end, events)
                if pos < end:
                    buf += view[pos:]
        except ProtocolError as exc:
            self._fail(exc)
            raise
        finally:
            view.release()
        return events

    def _complete_pending(self, view: memoryview, events: list[MuxEvent]) -> int:
        """Move bytes from ``view`` into the carried-over partial frame.

        Handles the frame if it becomes whole (then empties the buffer) and
        returns how many bytes of ``view`` were used. The header is validated
        as soon as it is complete, so a bad or oversized frame is refused
        before its body is buffered.
        """
        buf = self._buf
        n = len(view)
        pos = 0
        have = len(buf)
        if have < HEADER_SIZE:
            pos = min(HEADER_SIZE - have, n)
            buf += view[:pos]
            if len(buf) < HEADER_SIZE:
                return pos
        size = self._validate_header(buf, 0)
        missing = size - len(buf)
        if missing > 0:
            take = min(missing, n - pos)
            buf += view[pos : pos + take]
            pos += take
            if take < missing:
                return pos
        with memoryview(buf) as frame:
            self._parse(frame, 0, size, events)
        buf.clear()
        return pos

    def _parse(self, view: memoryview, pos: int, end: int, events: list[MuxEvent]) -> int:
        """Handle every complete frame in ``view[pos:end]``; return where parsing stopped."""
        streams = self._streams
        append = events.append
        while end - pos >= HEADER_SIZE:
            version, ftype, flags, sid, length = _unpack_from(view, pos)
            if ftype == TYPE_DATA and flags == 0 and version == PROTOCOL_VERSION:
                # Hot path: plain data on an open stream.
                st = streams.get(sid)
                if st is not None and not st.remote_closed:
                    if length > st.recv_credit:
                        raise _window_exceeded(sid, st.recv_credit, length)
                    stop = pos + HEADER_SIZE + length
                    if stop > end:
                        break
                    if length:
                        st.recv_credit -= length
                        st.unacked += length
                        append(DataReceived(sid, bytes(view[pos + HEADER_SIZE : stop])))
                    pos = stop
                    continue
            size = self._validate_header(view, pos)
            if end - pos < size:
                break
            if ftype == TYPE_DATA or ftype == TYPE_WINDOW_UPDATE:
                self._on_stream_frame(ftype, flags, sid, length, view, pos + HEADER_SIZE, events)
            elif ftype == TYPE_PING:
                if flags & FLAG_SYN:
                    self._out.append(_pack(PROTOCOL_VERSION, TYPE_PING, FLAG_ACK, 0, length))
                    append(PingReceived(length))
                else:  # go-yamux treats any non-SYN ping as the answer
                    append(PongReceived(length))
            else:  # TYPE_GO_AWAY (validated)
                self._remote_go_away = length
                append(GoAwayReceived(length))
            pos += size
        return pos

    def _validate_header(self, data: bytes | bytearray | memoryview, pos: int) -> int:
        """Check the header at ``pos`` without side effects; return the whole frame's size."""
        length: int
        version, ftype, flags, sid, length = _unpack_from(data, pos)
        if version != PROTOCOL_VERSION:
            raise ProtocolError(f"unsupported yamux version {version}")
        if ftype == TYPE_DATA or ftype == TYPE_WINDOW_UPDATE:
            if sid == 0:
                raise ProtocolError(f"yamux {type_name(ftype)} frame on the session id 0")
            if ftype == TYPE_WINDOW_UPDATE:
                return HEADER_SIZE
            st = self._streams.get(sid)
            if st is not None:
                limit = st.recv_credit
            elif flags & FLAG_SYN:
                limit = INITIAL_WINDOW  # the opener cannot have seen our grant yet
            else:
                limit = self._window  # dropped anyway; never more than we ever grant
            if length > limit:
                raise _window_exceeded(sid, limit, length)
            return HEADER_SIZE + length
        if ftype == TYPE_PING or ftype == TYPE_GO_AWAY:
            return HEADER_SIZE
        raise ProtocolError(f"unknown yamux frame type {ftype}")

    def _on_stream_frame(
        self,
        ftype: int,
        flags: int,
        sid: int,
        length: int,
        view: memoryview,
        body: int,
        events: list[MuxEvent],
    ) -> None:
        """Handle a complete DATA or WINDOW_UPDATE frame (header already validated)."""
        streams = self._streams
        st = streams.get(sid)
        if flags & FLAG_SYN:
            if sid & 1 != self._remote_parity:
                raise ProtocolError(f"remote opened stream {sid}, which has our id parity")
            if st is not None:
                raise ProtocolError(f"remote opened stream {sid}, which is already open")
            st = self._accept(sid, events)
            if st is None:
                return
        elif st is None:
            self._ignored += 1
            return
        if flags & FLAG_RST:
            del streams[sid]
            self._remember_reset(sid)
            events.append(StreamResetEvent(sid))
            return
        if ftype == TYPE_DATA:
            if length:
                if st.remote_closed:
                    raise ProtocolError(f"DATA on yamux stream {sid} after the remote's FIN")
                st.recv_credit -= length  # the header check bounded it
                st.unacked += length
                events.append(DataReceived(sid, bytes(view[body : body + length])))
        elif length:
            old = st.send_window
            new = old + length
            if new > MAX_U32:
                raise ProtocolError(f"yamux send window of stream {sid} overflows 2**32-1")
            st.send_window = new
            if old == 0 and not st.local_closed:
                events.append(SendWindowOpened(sid))
        if flags & FLAG_FIN and not st.remote_closed:
            st.remote_closed = True
            events.append(StreamEnded(sid))
            if st.local_closed:
                del streams[sid]

    def _accept(self, sid: int, events: list[MuxEvent]) -> _Stream | None:
        """Register a remote-opened stream and queue its ACK, or refuse it with RST."""
        if self._local_go_away or len(self._streams) >= self._max_streams:
            reason = "we sent GO_AWAY" if self._local_go_away else "max_streams reached"
            _log.debug("yamux: refusing remote stream %d: %s", sid, reason)
            self._refused += 1
            self._out.append(_pack(PROTOCOL_VERSION, TYPE_WINDOW_UPDATE, FLAG_RST, sid, 0))
            return None
        self._remote_resets.pop(sid, None)
        st = _Stream(INITIAL_WINDOW, self._window)
        self._streams[sid] = st
        self._accepted += 1
        events.append(StreamOpened(sid))
        self._out.append(_pack(PROTOCOL_VERSION, TYPE_WINDOW_UPDATE, FLAG_ACK, sid, self._extra))
        return st

    def _remember_reset(self, sid: int) -> None:
        resets = self._remote_resets
        if len(resets) >= self._max_streams:
            del resets[next(iter(resets))]
        resets[sid] = None

    def _fail(self, exc: ProtocolError) -> None:
        """Enter the failed state: queue GO_AWAY(protocol error), drop every stream."""
        self._failed = exc
        _log.debug("yamux: session failed: %s", exc)
        if not self._local_go_away:
            self._local_go_away = True
            self._out.append(_pack(PROTOCOL_VERSION, TYPE_GO_AWAY, 0, 0, GO_AWAY_PROTOCOL_ERROR))
        self._streams.clear()
        self._buf.clear()

    # ----------------------------------------------------------------- output

    def data_to_send(self) -> list[bytes]:
        """Return (and forget) the queued wire chunks, in order.

        Headers and payloads are separate items; the adapter joins them (or
        hands the list to ``writelines``).
        """
        out = self._out
        self._out = []
        self._tail_end = -1
        return out

    def open_stream(self) -> int:
        """Allocate the next stream id (odd for the client) and queue its SYN.

        Raises :class:`ClosedError` after either side's GO_AWAY or a session
        failure, :class:`LimitExceeded` at ``max_streams`` (or when the 32-bit
        id space is used up).
        """
        if self._failed is not None:
            raise ClosedError("yamux session failed") from self._failed
        if self._local_go_away:
            raise ClosedError("cannot open a stream: we sent GO_AWAY")
        if self._remote_go_away is not None:
            raise ClosedError(f"cannot open a stream: remote sent GO_AWAY({self._remote_go_away})")
        count = len(self._streams)
        if count >= self._max_streams:
            raise LimitExceeded(
                f"yamux: {count} streams open",
                limit_name="max_streams",
                limit=self._max_streams,
                value=count + 1,
            )
        sid = self._next_id
        if sid > MAX_U32:
            raise LimitExceeded(
                "yamux stream ids exhausted", limit_name="stream_ids", limit=MAX_U32, value=sid
            )
        self._next_id = sid + 2
        self._streams[sid] = _Stream(INITIAL_WINDOW, self._window)
        self._opened_locally += 1
        self._out.append(_pack(PROTOCOL_VERSION, TYPE_WINDOW_UPDATE, FLAG_SYN, sid, self._extra))
        return sid

    def send_data(self, stream_id: int, data: bytes | bytearray | memoryview) -> int:
        """Queue up to ``len(data)`` bytes as DATA frames; return how many were taken.

        Takes at most the current send window (0 when it is exhausted: wait
        for :class:`SendWindowOpened`), split into frames of at most
        ``max_frame_payload``. Queued payloads are ``bytes`` copies (a ``bytes``
        argument taken whole is queued as is), so the caller may reuse its
        buffer. Raises :class:`StreamReset` if the remote reset the stream,
        :class:`ClosedError` after our FIN or reset, or for an unknown stream.
        """
        st = self._streams.get(stream_id)
        if st is None or st.local_closed:
            raise self._not_writable(stream_id, st)
        chunks: bytes | memoryview
        if type(data) is bytes:
            chunks = data
        else:
            chunks = memoryview(data)
            if chunks.format != "B" or chunks.ndim != 1:
                chunks = chunks.cast("B")
        n = len(chunks)
        window = st.send_window
        if n > window:
            n = window
        if n <= 0:
            return 0
        st.send_window = window - n
        out = self._out
        maxp = self._max_payload
        if n <= maxp and type(chunks) is bytes:
            payload = chunks if n == len(chunks) else chunks[:n]
            if (
                self._tail_sid == stream_id
                and self._tail_end == len(out)
                and self._tail_len + n <= maxp
            ):
                self._tail_len += n
                out[self._tail_hdr] = _pack(
                    PROTOCOL_VERSION, TYPE_DATA, 0, stream_id, self._tail_len
                )
            else:
                self._tail_sid = stream_id
                self._tail_hdr = len(out)
                self._tail_len = n
                out.append(_pack(PROTOCOL_VERSION, TYPE_DATA, 0, stream_id, n))
            out.append(payload)
            self._tail_end = len(out)
            return n
        for off in range(0, n, maxp):
            k = min(maxp, n - off)
            out.append(_pack(PROTOCOL_VERSION, TYPE_DATA, 0, stream_id, k))
            out.append(bytes(chunks[off : off + k]))
        return n

    def _not_writable(self, stream_id: int, st: _Stream | None) -> Exception:
        if st is not None:
            return ClosedError(f"yamux stream {stream_id} is closed for writing")
        if self._failed is not None:
            return ClosedError("yamux session failed")
        if stream_id in self._remote_resets:
            return StreamReset(f"yamux stream {stream_id} was reset by the remote")
        return ClosedError(f"yamux stream {stream_id} is not open")

    def close_stream(self, stream_id: int) -> None:
        """Half-close our side: queue FIN. Idempotent; a dead stream is a no-op.

        Raises :class:`StreamReset` if the remote reset the stream.
        """
        st = self._streams.get(stream_id)
        if st is None:
            if stream_id in self._remote_resets and self._failed is None:
                raise StreamReset(f"yamux stream {stream_id} was reset by the remote")
            return
        if st.local_closed:
            return
        st.local_closed = True
        self._out.append(_pack(PROTOCOL_VERSION, TYPE_WINDOW_UPDATE, FLAG_FIN, stream_id, 0))
        if st.remote_closed:
            del self._streams[stream_id]

    def reset_stream(self, stream_id: int) -> None:
        """Abort the stream both ways: queue RST and forget it. A dead stream is a no-op."""
        if self._streams.pop(stream_id, None) is not None:
            self._out.append(_pack(PROTOCOL_VERSION, TYPE_WINDOW_UPDATE, FLAG_RST, stream_id, 0))

    def acknowledge(self, stream_id: int, n: int) -> None:
        """Record that the application consumed ``n`` received bytes.

        Once at least half the receive window has been consumed since the last
        grant, one WINDOW_UPDATE returns it all. Acknowledging a stream that is
        gone (reset, closed) is a no-op, since the application may read its
        buffered data late; acknowledging more than was delivered is a
        :class:`UsageError`, since it would let the remote overrun our buffers.
        """
        st = self._streams.get(stream_id)
        if st is None:
            return
        if n < 0 or n > st.unacked:
            raise UsageError(f"acknowledge({stream_id}, {n}): {st.unacked} bytes unacknowledged")
        st.unacked -= n
        if st.remote_closed:
            return  # nothing more will arrive: no credit needed
        grant = st.grant + n
        if grant >= self._threshold:
            st.grant = 0
            st.recv_credit += grant
            self._out.append(_pack(PROTOCOL_VERSION, TYPE_WINDOW_UPDATE, 0, stream_id, grant))
        else:
            st.grant = grant

    def ping(self, opaque: int) -> None:
        """Queue a PING (SYN); :class:`PongReceived` with ``opaque`` answers it."""
        if not 0 <= opaque <= MAX_U32:
            raise UsageError(f"yamux ping opaque must fit 32 bits, got {opaque}")
        if self._failed is not None:
            raise ClosedError("yamux session failed") from self._failed
        self._out.append(_pack(PROTOCOL_VERSION, TYPE_PING, FLAG_SYN, 0, opaque))

    def go_away(self, code: int = 0) -> None:
        """Queue GO_AWAY(``code``): we accept no new streams. Only the first call sends.

        Existing streams keep working; later remote SYNs are refused with RST.
        """
        if not 0 <= code <= MAX_U32:
            raise UsageError(f"yamux GO_AWAY code must fit 32 bits, got {code}")
        if self._local_go_away:
            return
        self._local_go_away = True
        self._out.append(_pack(PROTOCOL_VERSION, TYPE_GO_AWAY, 0, 0, code))

    # ------------------------------------------------------------ inspection

    @property
    def is_client(self) -> bool:
        """True for the side that opens odd stream ids."""
        return self._is_client

    @property
    def config(self) -> YamuxConfig:
        """The limits this session was created with."""
        return self._config

    def statistics(self) -> YamuxStatistics:
        """Return a snapshot of the session's counters."""
        return YamuxStatistics(
            open_streams=len(self._streams),
            streams_opened_locally=self._opened_locally,
            streams_accepted=self._accepted,
            streams_refused=self._refused,
            frames_ignored=self._ignored,
            local_go_away=self._local_go_away,
            remote_go_away_code=self._remote_go_away,
        )


def _window_exceeded(sid: int, limit: int, length: int) -> RemoteLimitExceeded:
    return RemoteLimitExceeded(
        f"yamux DATA of {length} bytes on stream {sid} exceeds the {limit} bytes granted",
        limit_name="receive_window",
        limit=limit,
        value=length,
    )


__all__ = ["YamuxConfig", "YamuxSession", "YamuxStatistics"]
