"""Wire format of ``/peerwire/bcast/1.0.0`` (documented in docs/protocols.md).

Two layers. The **post** is what the author wrote and signed; it never
changes on the way, so relays forward its bytes untouched::

    u8   version      1
    u64  timestamp    author's wall clock, ms since the Unix epoch
    u64  nonce        random: two posts with the same payload are two messages
    u8   author length, author: PeerId bytes
    u16  key length,  key: author's PublicKey protobuf, only if the PeerId does not
                      inline it (RSA); else empty
    u8   protocol length, protocol (UTF-8)
    u16  signature length, signature
    ...  payload      the rest

The post's **digest** is sha256("peerwire-bcast/1:" ‖ timestamp ‖ nonce ‖
u8 len ‖ author ‖ u8 len ‖ protocol ‖ payload); its first 16 bytes are the
**message id**, and the signature is the author's over "peerwire-bcast-sig/1:"
‖ digest. So an id cannot be claimed by a different body: a receiver
recomputes it, and a pull-mode body that does not hash to the id asked for is
simply not that message.

The **frame** (one per ``/peerwire/msg`` MESSAGE) wraps a post or ids::

    u8 type
    PUSH  (1): u8 hops, u8 hop_limit, post
    TREE  (2): u8 hops, u8 tree, u8 flags (reserved, 0), 32B limit, post
    IHAVE (3): u8 hops, u8 hop_limit, n x 16B ids   (1 <= n <= 1024)
    IWANT (4): n x 16B ids                          (1 <= n <= 1024)
    BODY  (5): u8 hops, u8 hop_limit, post          (answer to IWANT)

``hops`` is how many links the *sender's* copy travelled (0 at the author).
``tree`` is which of the ``copies`` trees the frame belongs to (see
:mod:`.tree`); ``limit`` ends the ring interval the receiver is responsible for.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import ProtocolError, UsageError

VERSION = 1
ID_BYTES = 16
LIMIT_BYTES = 32
MAX_IDS = 1024
DIGEST_DOMAIN = b"peerwire-bcast/1:"
SIGNATURE_DOMAIN = b"peerwire-bcast-sig/1:"

PUSH = 1
TREE = 2
IHAVE = 3
IWANT = 4
BODY = 5
TYPE_NAMES = {PUSH: "PUSH", TREE: "TREE", IHAVE: "IHAVE", IWANT: "IWANT", BODY: "BODY"}

POST_HEAD = struct.Struct(">BQQ")
U16 = struct.Struct(">H")
TREE_HEAD = struct.Struct(">BBBB32s")
"""type, hops, tree, flags, limit."""


@dataclass(slots=True)
class Post:
    """A decoded, not yet verified post. ``raw`` is its encoded form (forwarded as is)."""

    timestamp_ms: int
    nonce: int
    author: bytes
    key: bytes
    protocol: str
    signature: bytes
    payload: bytes
    digest: bytes
    raw: bytes

    @property
    def id(self) -> bytes:
        return self.digest[:ID_BYTES]


def digest_of(
    timestamp_ms: int, nonce: int, author: bytes, protocol: bytes, payload: bytes
) -> bytes:
    h = hashlib.sha256(DIGEST_DOMAIN)
    h.update(struct.pack(">QQB", timestamp_ms, nonce, len(author)))
    h.update(author)
    h.update(bytes((len(protocol),)))
    h.update(protocol)
    h.update(payload)
    return h.digest()


def signed_bytes(digest: bytes) -> bytes:
    """What the author signs."""
    return SIGNATURE_DOMAIN + digest


def encode_post(
    timestamp_ms: int,
    nonce: int,
    author: bytes,
    key: bytes,
    protocol: str,
    payload: bytes,
    sign: Callable[[bytes], bytes],
) -> Post:
    """Build and sign a post; ``sign(bytes) -> bytes`` is the author's signing function."""
    proto = protocol.encode()
    if not proto or len(proto) > 255:
        raise UsageError(f"protocol id must be 1..255 bytes: {protocol!r}")
    digest = digest_of(timestamp_ms, nonce, author, proto, payload)
    signature = sign(signed_bytes(digest))
    raw = b"".join(
        (
            POST_HEAD.pack(VERSION, timestamp_ms, nonce),
            bytes((len(author),)),
            author,
            U16.pack(len(key)),
            key,
            bytes((len(proto),)),
            proto,
            U16.pack(len(signature)),
            signature,
            payload,
        )
    )
    return Post(timestamp_ms, nonce, author, key, protocol, signature, payload, digest, raw)


def _take(data: bytes, pos: int, length: int, what: str) -> tuple[bytes, int]:
    end = pos + length
    if end > len(data):
        raise ProtocolError(f"broadcast post truncated in {what}")
    return data[pos:end], end


def decode_post(data: bytes) -> Post:
    """Decode a post and compute its digest; :class:`ProtocolError` if malformed."""
    if len(data) < POST_HEAD.size:
        raise ProtocolError("broadcast post shorter than its header")
    version, ts, nonce = POST_HEAD.unpack_from(data)
    if version != VERSION:
        raise ProtocolError(f"unknown broadcast post version {version}")
    pos = POST_HEAD.size
    if pos >= len(data):
        raise ProtocolError("broadcast post truncated before author")
    author, pos = _take(data, pos + 1, data[pos], "author")
    if not author:
        raise ProtocolError("broadcast post without an author")
    if pos + 2 > len(data):
        raise ProtocolError("broadcast post truncated before key")
    key, pos = _take(data, pos + 2, U16.unpack_from(data, pos)[0], "key")
    if pos >= len(data):
        raise ProtocolError("broadcast post truncated before protocol")
    raw_proto, pos = _take(data, pos + 1, data[pos], "protocol")
    if not raw_proto:
        raise ProtocolError("broadcast post with an empty protocol id")
    try:
        protocol = raw_proto.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("broadcast protocol id is not UTF-8") from exc
    if pos + 2 > len(data):
        raise ProtocolError("broadcast post truncated before signature")
    signature, pos = _take(data, pos + 2, U16.unpack_from(data, pos)[0], "signature")
    payload = data[pos:]
    digest = digest_of(ts, nonce, author, raw_proto, payload)
    return Post(ts, nonce, author, key, protocol, signature, payload, digest, bytes(data))


# ------------------------------------------------------------------ frames
@dataclass(slots=True)
class Frame:
    """One decoded frame. ``post`` is set for PUSH/TREE/BODY, ``ids`` for IHAVE/IWANT."""

    type: int
    hops: int = 0
    hop_limit: int = 0
    tree: int = 0
    flags: int = 0
    limit: bytes = b""
    ids: list[bytes] | None = None
    post: Post | None = None


def encode_push(hops: int, hop_limit: int, post_raw: bytes, *, body: bool = False) -> bytes:
    return bytes((BODY if body else PUSH, hops, hop_limit)) + post_raw


def encode_tree(hops: int, tree: int, limit: bytes, post_raw: bytes) -> bytes:
    return TREE_HEAD.pack(TREE, hops, tree, 0, limit) + post_raw


def encode_ids(kind: int, ids: list[bytes], hops: int = 0, hop_limit: int = 0) -> bytes:
    if not 1 <= len(ids) <= MAX_IDS:
        raise UsageError(f"1..{MAX_IDS} ids per frame")
    head = bytes((IHAVE, hops, hop_limit)) if kind == IHAVE else bytes((IWANT,))
    return head + b"".join(ids)


def _ids(data: bytes, pos: int) -> list[bytes]:
    rest = len(data) - pos
    if rest <= 0 or rest % ID_BYTES or rest // ID_BYTES > MAX_IDS:
        raise ProtocolError(f"broadcast id list of {rest} bytes is not 1..{MAX_IDS} ids")
    return [data[i : i + ID_BYTES] for i in range(pos, len(data), ID_BYTES)]


def decode_frame(data: bytes) -> Frame:
    """Decode one frame (and its post); :class:`ProtocolError` if malformed."""
    if not data:
        raise ProtocolError("empty broadcast frame")
    kind = data[0]
    if kind in (PUSH, BODY):
        if len(data) < 3:
            raise ProtocolError("broadcast frame truncated")
        return Frame(kind, data[1], data[2], post=decode_post(data[3:]))
    if kind == TREE:
        if len(data) < TREE_HEAD.size:
            raise ProtocolError("broadcast TREE frame truncated")
        _, hops, tree, flags, limit = TREE_HEAD.unpack_from(data)
        post = decode_post(data[TREE_HEAD.size :])
        return Frame(kind, hops, tree=tree, flags=flags, limit=limit, post=post)
    if kind == IHAVE:
        if len(data) < 3:
            raise ProtocolError("broadcast IHAVE frame truncated")
        return Frame(kind, data[1], data[2], ids=_ids(data, 3))
    if kind == IWANT:
        return Frame(kind, ids=_ids(data, 1))
    raise ProtocolError(f"unknown broadcast frame type {kind}")
