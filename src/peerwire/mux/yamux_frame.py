"""The yamux frame header: constants, layout and a small codec.

Every yamux frame starts with the same 12-byte header (hashicorp/yamux
``spec.md``, "Framing"), all fields big-endian::

    version u8 | type u8 | flags u16 | stream id u32 | length u32

Only DATA frames carry a body (``length`` bytes). For WINDOW_UPDATE the length
is a window delta, for PING an opaque value echoed back, for GO_AWAY an error
code. The session core (:mod:`peerwire.mux.yamux`) parses headers itself with
the precompiled :data:`HEADER` struct on its hot path; :func:`encode_header`
and :func:`decode_header` are the checked, readable versions for tests, tools
and anything not performance-critical.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import ProtocolError, UsageError

HEADER = struct.Struct(">BBHII")
"""Precompiled header layout; ``unpack_from`` on it is the fastest way to parse."""

HEADER_SIZE = HEADER.size
"""12 bytes: 1 version + 1 type + 2 flags + 4 stream id + 4 length."""

PROTOCOL_VERSION = 0
"""The only version the spec defines; anything else is a protocol error."""

TYPE_DATA = 0
"""Carries ``length`` bytes of stream payload; only these count against windows."""
TYPE_WINDOW_UPDATE = 1
"""Grants ``length`` more bytes of send credit on a stream (also carries SYN/ACK/FIN/RST)."""
TYPE_PING = 2
"""Keep-alive / RTT probe on stream 0; ``length`` is an opaque value echoed back."""
TYPE_GO_AWAY = 3
"""The sender accepts no new streams; ``length`` is a GO_AWAY_* code."""

FLAG_SYN = 0x1
"""Opens a stream (or marks a ping as a request)."""
FLAG_ACK = 0x2
"""Accepts a stream (or marks a ping as the answer)."""
FLAG_FIN = 0x4
"""Half-closes the sender's side of a stream."""
FLAG_RST = 0x8
"""Aborts a stream in both directions."""

SESSION_STREAM_ID = 0
"""Stream id 0 stands for the session itself: only PING and GO_AWAY use it."""

INITIAL_WINDOW = 256 * 1024
"""Both sides assume this per-stream window before any WINDOW_UPDATE (spec value)."""

MAX_U32 = 0xFFFF_FFFF
"""Largest value of the 32-bit stream id, length, window and opaque fields."""

GO_AWAY_NORMAL = 0
"""GO_AWAY code: normal termination."""
GO_AWAY_PROTOCOL_ERROR = 1
"""GO_AWAY code: the peer broke the protocol."""
GO_AWAY_INTERNAL_ERROR = 2
"""GO_AWAY code: the sender hit an internal error."""

_TYPE_NAMES = {
    TYPE_DATA: "DATA",
    TYPE_WINDOW_UPDATE: "WINDOW_UPDATE",
    TYPE_PING: "PING",
    TYPE_GO_AWAY: "GO_AWAY",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameHeader:
    """One decoded yamux frame header."""

    type: int
    """One of the ``TYPE_*`` constants."""
    flags: int
    """Bitwise OR of ``FLAG_*`` constants (unknown bits are kept, not rejected)."""
    stream_id: int
    """Stream the frame addresses; 0 for PING and GO_AWAY."""
    length: int
    """Body length (DATA), window delta (WINDOW_UPDATE), opaque (PING) or code (GO_AWAY)."""
    version: int = PROTOCOL_VERSION
    """Always 0 on the wire today."""

    @property
    def body_size(self) -> int:
        """Bytes that follow the header: ``length`` for DATA, otherwise none."""
        return self.length if self.type == TYPE_DATA else 0


def type_name(frame_type: int) -> str:
    """A readable name for a frame type, for log and error messages."""
    return _TYPE_NAMES.get(frame_type, f"type {frame_type}")


def encode_header(frame_type: int, flags: int, stream_id: int, length: int) -> bytes:
    """Encode a 12-byte header, checking every field's range.

    Raises :class:`UsageError` for a field that does not fit on the wire, or a
    frame type the spec does not define.
    """
    if frame_type not in _TYPE_NAMES:
        raise UsageError(f"unknown yamux frame type {frame_type}")
    if not 0 <= flags <= 0xFFFF:
        raise UsageError(f"yamux flags out of range: {flags}")
    if not 0 <= stream_id <= MAX_U32:
        raise UsageError(f"yamux stream id out of range: {stream_id}")
    if not 0 <= length <= MAX_U32:
        raise UsageError(f"yamux length out of range: {length}")
    return HEADER.pack(PROTOCOL_VERSION, frame_type, flags, stream_id, length)


def decode_header(data: bytes | bytearray | memoryview, offset: int = 0) -> FrameHeader:
    """Decode the header at ``offset``.

    Raises :class:`UsageError` if fewer than 12 bytes are available (the
    caller should wait for more), and :class:`ProtocolError` for a version or
    frame type this implementation does not speak: both kill a session.
    """
    if len(data) - offset < HEADER_SIZE:
        raise UsageError(f"need {HEADER_SIZE} bytes for a yamux header")
    version, frame_type, flags, stream_id, length = HEADER.unpack_from(data, offset)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported yamux version {version}")
    if frame_type not in _TYPE_NAMES:
        raise ProtocolError(f"unknown yamux frame type {frame_type}")
    return FrameHeader(type=frame_type, flags=flags, stream_id=stream_id, length=length)


__all__ = [
    "FLAG_ACK",
    "FLAG_FIN",
    "FLAG_RST",
    "FLAG_SYN",
    "GO_AWAY_INTERNAL_ERROR",
    "GO_AWAY_NORMAL",
    "GO_AWAY_PROTOCOL_ERROR",
    "HEADER",
    "HEADER_SIZE",
    "INITIAL_WINDOW",
    "MAX_U32",
    "PROTOCOL_VERSION",
    "SESSION_STREAM_ID",
    "TYPE_DATA",
    "TYPE_GO_AWAY",
    "TYPE_PING",
    "TYPE_WINDOW_UPDATE",
    "FrameHeader",
    "decode_header",
    "encode_header",
    "type_name",
]
