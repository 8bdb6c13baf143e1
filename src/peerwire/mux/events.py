"""Events produced by the stream multiplexer cores (yamux, mplex).

Both cores emit the same event types and implement :class:`MuxerCore`, so one
asyncio adapter (``peerwire.mux.session``) drives either. Stream ids are opaque
integers chosen by the core; they are unique within one session for its lifetime.
"""

from __future__ import annotations

from typing import ClassVar, Protocol


class _Event:
    """Base of the muxer events: compared by value; treat them as immutable.

    Plain slotted classes rather than frozen dataclasses: one event is made per
    received frame (a frozen dataclass ``__init__`` goes through
    ``object.__setattr__`` for every field), and generating dataclass methods at
    import time slows down process start.
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(getattr(self, f) for f in self._fields)))

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"


class StreamOpened(_Event):
    """The remote opened a new stream."""

    __slots__ = ("stream_id",)
    _fields = ("stream_id",)
    stream_id: int

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class DataReceived(_Event):
    """Bytes arrived on a stream. The adapter must later call ``acknowledge``."""

    __slots__ = ("data", "stream_id")
    _fields = ("stream_id", "data")
    stream_id: int
    data: bytes

    def __init__(self, stream_id: int, data: bytes) -> None:
        self.stream_id = stream_id
        self.data = data


class StreamEnded(_Event):
    """The remote half-closed its side of the stream (no more data will come)."""

    __slots__ = ("stream_id",)
    _fields = ("stream_id",)
    stream_id: int

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class StreamReset(_Event):
    """The stream was reset by the remote; both directions are dead."""

    __slots__ = ("stream_id",)
    _fields = ("stream_id",)
    stream_id: int

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class SendWindowOpened(_Event):
    """The remote granted more send credit on a stream (yamux window update)."""

    __slots__ = ("stream_id",)
    _fields = ("stream_id",)
    stream_id: int

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class PingReceived(_Event):
    """The remote pinged us; the core has already queued the answer."""

    __slots__ = ("opaque",)
    _fields = ("opaque",)
    opaque: int

    def __init__(self, opaque: int) -> None:
        self.opaque = opaque


class PongReceived(_Event):
    """The answer to one of our pings arrived."""

    __slots__ = ("opaque",)
    _fields = ("opaque",)
    opaque: int

    def __init__(self, opaque: int) -> None:
        self.opaque = opaque


class GoAwayReceived(_Event):
    """The remote will accept no new streams (yamux go-away). ``code`` is the wire code."""

    __slots__ = ("code",)
    _fields = ("code",)
    code: int

    def __init__(self, code: int) -> None:
        self.code = code


MuxEvent = (
    StreamOpened
    | DataReceived
    | StreamEnded
    | StreamReset
    | SendWindowOpened
    | PingReceived
    | PongReceived
    | GoAwayReceived
)


class MuxerCore(Protocol):
    """What the asyncio muxer adapter needs from a sans-IO multiplexer core.

    All methods are synchronous and never do I/O. Outgoing frames accumulate
    until :meth:`data_to_send` collects them, so a burst of writes costs one
    socket write (and one Noise frame per 64 KiB).
    """

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[MuxEvent]:
        """Feed bytes from the (decrypted) connection; return the events they complete.

        Raises :class:`peerwire.errors.ProtocolError` when the remote broke the
        protocol in a way that kills the whole session.
        """
        ...

    def data_to_send(self) -> list[bytes]:
        """Return (and forget) the frames queued for the wire, in order."""
        ...

    def open_stream(self) -> int:
        """Allocate a new outbound stream id and queue whatever opens it."""
        ...

    def send_data(self, stream_id: int, data: bytes | bytearray | memoryview) -> int:
        """Queue up to ``len(data)`` bytes on a stream; return how many were taken.

        Fewer than ``len(data)`` (possibly 0) means the send window is
        exhausted: wait for :class:`SendWindowOpened` and send the rest.
        """
        ...

    def close_stream(self, stream_id: int) -> None:
        """Half-close our side (FIN / CLOSE): we will send no more data."""
        ...

    def reset_stream(self, stream_id: int) -> None:
        """Abort the stream in both directions (RST / RESET)."""
        ...

    def acknowledge(self, stream_id: int, n: int) -> None:
        """The application consumed ``n`` bytes from the stream (may grant window)."""
        ...

    def ping(self, opaque: int) -> None:
        """Queue a ping; :class:`PongReceived` with the same opaque value answers it."""
        ...

    def go_away(self, code: int = 0) -> None:
        """Tell the remote we accept no new streams."""
        ...
