"""Wire format of ``/peerwire/msg/1.0.0`` envelopes (see docs/protocols.md).

A fixed binary header, not protobuf: on the hot path one envelope is encoded
and decoded per message, and a ``struct`` header is several times cheaper
than a protobuf message in CPython (measured in benchmarks/codec.py).

    u32  length of everything after this field (big-endian)
    u8   kind        HELLO=0 MESSAGE=1 REQUEST=2 REPLY=3 ERROR=4
    u8   flags       bit 0: SIGNED
    u64  id          message id; a REPLY/ERROR carries the id of its REQUEST
    u64  timestamp   sender's wall clock, milliseconds since the Unix epoch
    u8   protocol length, then the protocol id (UTF-8); empty for REPLY/ERROR/HELLO
    if SIGNED: u16 key length, key (libp2p PublicKey protobuf), u8 signature length, signature
    payload      the rest (HELLO: the sender's agent string; ERROR: u8 code + UTF-8 text)

The signature covers ``SIGNATURE_DOMAIN + kind + id + timestamp + protocol + payload``
so a signed payload cannot be replayed under another protocol, id or time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ...errors import MessageTooLarge, ProtocolError

HELLO = 0
MESSAGE = 1
REQUEST = 2
REPLY = 3
ERROR = 4
KIND_NAMES = ("HELLO", "MESSAGE", "REQUEST", "REPLY", "ERROR")

FLAG_SIGNED = 0x01

HEADER = struct.Struct(">IBBQQB")
"""length, kind, flags, id, timestamp, protocol length."""
LENGTH = struct.Struct(">I")
HEADER_SIZE = HEADER.size  # 23
KEY_LEN = struct.Struct(">H")
MAX_PROTOCOL_LENGTH = 255
SIGNATURE_DOMAIN = b"peerwire-msg/1:"

# Error codes carried by ERROR replies.
ERR_HANDLER = 1
"""The remote handler raised."""
ERR_UNKNOWN_PROTOCOL = 2
"""The remote has no handler or inbox for the protocol."""
ERR_REJECTED = 3
"""A middleware hook or validation at the remote dropped the request."""
ERR_LIMIT = 4
"""The remote refused the request because one of its limits was hit."""


@dataclass(slots=True)
class Envelope:
    """One decoded frame. ``data`` is the payload (for ERROR: code byte + text)."""

    kind: int
    flags: int
    id: int
    timestamp_ms: int
    protocol: str
    data: bytes
    key: bytes = b""
    signature: bytes = b""


def signed_bytes(kind: int, msg_id: int, timestamp_ms: int, protocol: bytes, data: bytes) -> bytes:
    """What a message signature covers."""
    return b"".join(
        (SIGNATURE_DOMAIN, struct.pack(">BQQ", kind, msg_id, timestamp_ms), protocol, b"\0", data)
    )


def encode(
    kind: int,
    msg_id: int,
    timestamp_ms: int,
    protocol: bytes,
    data: bytes | bytearray | memoryview,
    max_size: int,
    *,
    key: bytes = b"",
    signature: bytes = b"",
) -> bytes:
    """Encode one frame. ``protocol`` is the UTF-8 protocol id (<= 255 bytes)."""
    if key:
        extra = KEY_LEN.pack(len(key)) + key + bytes((len(signature),)) + signature
        flags = FLAG_SIGNED
    else:
        extra = b""
        flags = 0
    body = HEADER_SIZE - 4 + len(protocol) + len(extra) + len(data)
    if body + 4 > max_size:
        raise MessageTooLarge(
            f"message of {body + 4} bytes exceeds max_message_size ({max_size})",
            limit_name="max_message_size",
            limit=max_size,
            value=body + 4,
        )
    head = HEADER.pack(body, kind, flags, msg_id, timestamp_ms, len(protocol))
    return b"".join((head, protocol, extra, data))


def encode_error(msg_id: int, timestamp_ms: int, code: int, text: str, *, max_size: int) -> bytes:
    raw = text.encode("utf-8", "replace")[:1024]
    return encode(ERROR, msg_id, timestamp_ms, b"", bytes((code,)) + raw, max_size=max_size)


def decode_error(data: bytes) -> tuple[int, str]:
    if not data:
        return 0, ""
    return data[0], data[1:].decode("utf-8", "replace")


class FrameDecoder:
    """Incremental decoder: feed chunks, iterate complete envelopes.

    A frame larger than ``max_size`` is refused from its header alone
    (:class:`ProtocolError`), before any of it is buffered.
    """

    __slots__ = ("_have", "_need", "_parts", "_protocols", "max_size")

    def __init__(self, max_size: int) -> None:
        # A partial frame is kept as a list of chunks and joined once complete, so a
        # 1 MiB message arriving in 64 KiB pieces is copied once, not 16 times.
        self._parts: list[bytes] = []
        self._have = 0
        self._need = 0
        self.max_size = max_size
        self._protocols: dict[bytes, str] = {}

    @property
    def buffered(self) -> int:
        return self._have

    def feed(self, data: bytes) -> list[Envelope]:
        """Decode every complete frame in what was buffered plus ``data``."""
        if self._parts:
            self._parts.append(data)
            self._have += len(data)
            if self._have < self._need:
                return []
            buf = b"".join(self._parts)
            self._parts = []
            self._have = 0
        else:
            buf = data
        out: list[Envelope] = []
        offset = 0
        end = len(buf)
        unpack = HEADER.unpack_from
        max_size = self.max_size
        protocols = self._protocols
        while end - offset >= HEADER_SIZE:
            length, kind, flags, msg_id, ts, plen = unpack(buf, offset)
            total = length + 4
            if total > max_size:
                raise ProtocolError(
                    f"message frame of {total} bytes exceeds max_message_size ({max_size})"
                )
            if total < HEADER_SIZE + plen:
                raise ProtocolError("message frame shorter than its header")
            if kind > ERROR:
                raise ProtocolError(f"unknown message kind {kind}")
            if end - offset < total:
                self._need = total
                break
            pos = offset + HEADER_SIZE
            frame_end = offset + total
            raw_protocol = buf[pos : pos + plen]
            protocol = protocols.get(raw_protocol)
            if protocol is None:
                try:
                    protocol = raw_protocol.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ProtocolError("protocol id is not UTF-8") from exc
                if len(protocols) < 1024:
                    protocols[raw_protocol] = protocol
            pos += plen
            key = sig = b""
            if flags & FLAG_SIGNED:
                if frame_end - pos < 3:
                    raise ProtocolError("truncated signature block")
                (klen,) = KEY_LEN.unpack_from(buf, pos)
                pos += 2
                key = buf[pos : pos + klen]
                pos += klen
                if pos >= frame_end:
                    raise ProtocolError("truncated signature block")
                slen = buf[pos]
                pos += 1
                sig = buf[pos : pos + slen]
                pos += slen
                if pos > frame_end or len(key) != klen or len(sig) != slen:
                    raise ProtocolError("truncated signature block")
            out.append(Envelope(kind, flags, msg_id, ts, protocol, buf[pos:frame_end], key, sig))
            offset = frame_end
        if offset < end:
            rest = buf[offset:]
            if end - offset < HEADER_SIZE:
                self._need = HEADER_SIZE
            self._parts = [rest]
            self._have = len(rest)
        return out
