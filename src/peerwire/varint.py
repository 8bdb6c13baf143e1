"""Unsigned LEB128 varints (multiformats unsigned-varint) and length-prefixed framing.

The multiformats spec caps varints at 9 bytes (63 bits) and requires minimal
encoding; we enforce both, because a lenient decoder lets a peer smuggle in
huge lengths or aliasing encodings.
"""

from __future__ import annotations

from .errors import ProtocolError, UsageError

MAX_VARINT_BYTES = 9
"""multiformats unsigned-varint: at most 9 bytes, i.e. values below 2**63."""


def encode_uvarint(value: int) -> bytes:
    """Encode a non-negative integer below 2**63 as an unsigned varint."""
    if value < 0 or value >= 1 << 63:
        raise UsageError(f"varint out of range: {value}")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(buf: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int] | None:
    """Decode a varint at ``offset``.

    Returns ``(value, next_offset)``, or ``None`` if ``buf`` ends before the
    varint does. Raises :class:`ProtocolError` for an over-long or
    non-minimal encoding.
    """
    value = 0
    shift = 0
    end = len(buf)
    i = offset
    while i < end:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and i - offset > 1:
                raise ProtocolError("non-minimal varint encoding")
            return value, i
        shift += 7
        if i - offset >= MAX_VARINT_BYTES:
            raise ProtocolError("varint longer than 9 bytes")
    return None


def decode_uvarint_exact(buf: bytes | bytearray | memoryview) -> tuple[int, int]:
    """Like :func:`decode_uvarint` at offset 0, but a truncated varint is a ProtocolError."""
    got = decode_uvarint(buf, 0)
    if got is None:
        raise ProtocolError("truncated varint")
    return got


def encode_length_prefixed(payload: bytes | bytearray | memoryview) -> bytes:
    """Prefix ``payload`` with its length as a varint (libp2p's usual message framing)."""
    return encode_uvarint(len(payload)) + bytes(payload)


class LengthPrefixedReader:
    """Incremental decoder for varint-length-prefixed messages (sans-IO).

    Feed bytes with :meth:`feed`; pop complete messages with :meth:`next_message`.
    A declared length above ``max_size`` raises :class:`ProtocolError` before any
    of the body is buffered.
    """

    __slots__ = ("_buf", "max_size")

    def __init__(self, max_size: int):
        self._buf = bytearray()
        self.max_size = max_size

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    def next_message(self) -> bytes | None:
        got = decode_uvarint(self._buf)
        if got is None:
            return None
        length, start = got
        if length > self.max_size:
            raise ProtocolError(f"message of {length} bytes exceeds limit {self.max_size}")
        end = start + length
        if len(self._buf) < end:
            return None
        msg = bytes(self._buf[start:end])
        del self._buf[:end]
        return msg

    def take_buffered(self) -> bytes:
        """Return and clear whatever bytes are buffered but not yet consumed."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest
