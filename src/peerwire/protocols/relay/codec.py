"""Wire format of ``/peerwire/relay/1.0.0`` frames (documented in docs/protocols.md).

A relay frame travels as the payload of a ``/peerwire/msg/1.0.0`` MESSAGE
between neighbours, so it inherits that layer's batching, flow control and
size limit. A fixed ``struct`` header, not protobuf, for the reason the msg
envelope gives (cheaper per message in CPython)::

    u8   version      1
    u8   kind         DATA=0 REQUEST=1 REPLY=2 ERROR=3
    u8   hops         links travelled so far (incremented by every receiver)
    u8   ttl          most links the frame may travel
    u64  id           chosen by the frame's source, unique per source
    u64  reply_to     REPLY/ERROR: the id of the REQUEST answered; else 0
    u64  timestamp    source's wall clock, ms since the Unix epoch
    32B  dest         the key routed to
    u8   src length,  src: PeerId bytes of the frame's source
    u8   to length,   to: PeerId bytes of the origin a REPLY/ERROR is for (else empty)
    u8   protocol length, protocol (UTF-8)
    u16  key length,  key: the source's PublicKey protobuf, only if ``src`` does not
                      inline it (RSA ids); else empty
    u16  signature length, signature (empty when unsigned; u16 so RSA fits)
    ...  payload      the rest (ERROR: u8 code + UTF-8 text)

The signature covers everything except ``hops`` and ``ttl`` (which change on
the way), under the domain ``peerwire-relay/1:``. Only the destination checks
it: intermediate hops cannot read the sender's intent anyway, and skipping
the check keeps forwarding cheap.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ...errors import ProtocolError, UsageError

VERSION = 1

DATA = 0
REQUEST = 1
REPLY = 2
ERROR = 3
KIND_NAMES = ("DATA", "REQUEST", "REPLY", "ERROR")

HEADER = struct.Struct(">BBBBQQQ32s")
"""version, kind, hops, ttl, id, reply_to, timestamp, dest."""
HOPS_OFFSET = 2
U16 = struct.Struct(">H")
DEST_BYTES = 32
MAX_PEER_ID_LENGTH = 255
MAX_PROTOCOL_LENGTH = 255
SIGNATURE_DOMAIN = b"peerwire-relay/1:"

# ERROR payload codes (the first payload byte of an ERROR frame). 1-4 mean what
# they mean for /peerwire/msg ERROR replies, so ``RemoteError.code`` reads the
# same for direct and routed requests.
ERR_HANDLER = 1
"""The responsible node's handler raised."""
ERR_NO_HANDLER = 2
"""The responsible node has no handler or inbox for the protocol."""
ERR_REJECTED = 3
"""The responsible node refused the frame (bad signature, stale timestamp, middleware)."""
ERR_LIMIT = 4
"""The responsible node hit one of its limits while delivering."""
ERR_TTL = 16
"""The frame travelled ``ttl`` hops without reaching the responsible node."""
ERR_UNROUTABLE = 17
"""A node on the way could forward the frame to none of its candidate next hops."""
ERROR_NAMES = {
    ERR_TTL: "ttl exceeded",
    ERR_UNROUTABLE: "unroutable",
    ERR_NO_HANDLER: "no handler",
    ERR_HANDLER: "handler failed",
    ERR_REJECTED: "rejected",
    ERR_LIMIT: "limit",
}


@dataclass(slots=True)
class RelayFrame:
    """One decoded relay frame."""

    kind: int
    hops: int
    ttl: int
    id: int
    reply_to: int
    timestamp_ms: int
    dest: bytes
    src: bytes
    """PeerId bytes of the source (validated by the service, not here)."""
    to: bytes
    protocol: str
    key: bytes
    signature: bytes
    payload: bytes


def signed_bytes(frame: RelayFrame) -> bytes:
    """What the source signs: the frame without ``hops``/``ttl``."""
    proto = frame.protocol.encode()
    return b"".join(
        (
            SIGNATURE_DOMAIN,
            struct.pack(">BQQQ", frame.kind, frame.id, frame.reply_to, frame.timestamp_ms),
            frame.dest,
            bytes((len(frame.src),)),
            frame.src,
            bytes((len(frame.to),)),
            frame.to,
            proto,
            b"\0",
            frame.payload,
        )
    )


def encode(frame: RelayFrame) -> bytes:
    """Encode ``frame``; :class:`UsageError` if a field does not fit the format."""
    proto = frame.protocol.encode()
    if len(proto) > MAX_PROTOCOL_LENGTH:
        raise UsageError(f"protocol id longer than {MAX_PROTOCOL_LENGTH} bytes")
    if len(frame.dest) != DEST_BYTES:
        raise UsageError(f"relay destination keys are {DEST_BYTES} bytes")
    return b"".join(
        (
            HEADER.pack(
                VERSION,
                frame.kind,
                frame.hops,
                frame.ttl,
                frame.id,
                frame.reply_to,
                frame.timestamp_ms,
                frame.dest,
            ),
            bytes((len(frame.src),)),
            frame.src,
            bytes((len(frame.to),)),
            frame.to,
            bytes((len(proto),)),
            proto,
            U16.pack(len(frame.key)),
            frame.key,
            U16.pack(len(frame.signature)),
            frame.signature,
            frame.payload,
        )
    )


def with_hops(data: bytes, hops: int) -> bytes:
    """``data`` (an encoded frame) with its hop count replaced."""
    return data[:HOPS_OFFSET] + bytes((hops,)) + data[HOPS_OFFSET + 1 :]


def _take(data: bytes, pos: int, length: int, what: str) -> tuple[bytes, int]:
    end = pos + length
    if end > len(data):
        raise ProtocolError(f"relay frame truncated in {what}")
    return data[pos:end], end


def _take_u8_prefixed(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    if pos >= len(data):
        raise ProtocolError(f"relay frame truncated before {what}")
    return _take(data, pos + 1, data[pos], what)


def _take_u16_prefixed(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    if pos + U16.size > len(data):
        raise ProtocolError(f"relay frame truncated before {what}")
    (length,) = U16.unpack_from(data, pos)
    return _take(data, pos + U16.size, length, what)


def decode(data: bytes) -> RelayFrame:
    """Decode one frame; :class:`ProtocolError` on anything malformed."""
    if len(data) < HEADER.size:
        raise ProtocolError(f"relay frame of {len(data)} bytes is shorter than its header")
    version, kind, hops, ttl, msg_id, reply_to, ts, dest = HEADER.unpack_from(data)
    if version != VERSION:
        raise ProtocolError(f"unknown relay frame version {version}")
    if kind > ERROR:
        raise ProtocolError(f"unknown relay frame kind {kind}")
    pos = HEADER.size
    src, pos = _take_u8_prefixed(data, pos, "src")
    if not src:
        raise ProtocolError("relay frame without a source")
    to, pos = _take_u8_prefixed(data, pos, "to")
    if (kind in (REPLY, ERROR)) != bool(to):
        raise ProtocolError("relay frame: 'to' must be set exactly on REPLY and ERROR")
    raw_proto, pos = _take_u8_prefixed(data, pos, "protocol")
    try:
        protocol = raw_proto.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("relay frame protocol id is not UTF-8") from exc
    key, pos = _take_u16_prefixed(data, pos, "key")
    signature, pos = _take_u16_prefixed(data, pos, "signature")
    return RelayFrame(
        kind, hops, ttl, msg_id, reply_to, ts, dest, src, to, protocol, key, signature, data[pos:]
    )


def encode_error_payload(code: int, text: str) -> bytes:
    return bytes((code,)) + text.encode("utf-8", "replace")[:1024]


def decode_error_payload(payload: bytes) -> tuple[int, str]:
    if not payload:
        return 0, ""
    return payload[0], payload[1:].decode("utf-8", "replace")
