"""Events produced by the stream multiplexer cores (yamux, mplex).

Both cores emit the same event types and implement :class:`MuxerCore`, so one
asyncio adapter (``peerwire.mux.session``) drives either. Stream ids are opaque
integers chosen by the core; they are unique within one session for its lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """The remote opened a new stream."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Bytes arrived on a stream. The adapter must later call ``acknowledge``."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The remote half-closed its side of the stream (no more data will come)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The stream was reset by the remote; both directions are dead."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class SendWindowOpened:
    """The remote granted more send credit on a stream (yamux window update)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class PingReceived:
    """The remote pinged us; the core has already queued the answer."""

    opaque: int


@dataclass(frozen=True, slots=True)
class PongReceived:
    """The answer to one of our pings arrived."""

    opaque: int


@dataclass(frozen=True, slots=True)
class GoAwayReceived:
    """The remote will accept no new streams (yamux go-away). ``code`` is the wire code."""

    code: int


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
