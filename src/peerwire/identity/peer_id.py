"""PeerId: the multihash of a libp2p public key (peer-ids spec).

A key whose PublicKey protobuf is at most 42 bytes (Ed25519, secp256k1) is
embedded whole with the *identity* multihash, so the key can be recovered from
the PeerId; larger keys (RSA, ECDSA) are hashed with sha2-256.

Only those two multihash forms are accepted. Anything else would be a PeerId
no key can ever match, and accepting it would let remote junk into peer
stores and routing tables. An identity PeerId must also hold a decodable key.

Text: printed as bare base58btc (``12D3KooW...`` for Ed25519, ``Qm...`` for
sha2-256), the form every implementation reads; parsed from that form or from
a CIDv1 with the ``libp2p-key`` codec in any supported multibase.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Final, NoReturn

from .._cache import remember
from ..errors import InvalidKeyError, ProtocolError
from ..varint import decode_uvarint, encode_uvarint
from .keys import PublicKey, public_key_from_protobuf
from .multibase import b58decode, b58encode, multibase_decode, multibase_encode

__all__ = [
    "LIBP2P_KEY_CODEC",
    "MAX_INLINE_KEY_LENGTH",
    "MAX_PEER_ID_TEXT_LENGTH",
    "MULTIHASH_IDENTITY",
    "MULTIHASH_SHA2_256",
    "PeerId",
]

MULTIHASH_IDENTITY: Final = 0x00
MULTIHASH_SHA2_256: Final = 0x12
LIBP2P_KEY_CODEC: Final = 0x72
"""Multicodec of a CID that names a libp2p public key (a PeerId)."""

MAX_INLINE_KEY_LENGTH: Final = 42
"""Public key protobufs up to this size are inlined (identity multihash), per the spec."""

MAX_PEER_ID_TEXT_LENGTH: Final = 256
"""Longest PeerId text parsed. Real ones are under 100 characters; the bound keeps
base58 decoding (quadratic in length) cheap on hostile input."""

_CID_VERSION_1: Final = 1
VALIDATED_CACHE_SIZE: Final = 1 << 14
"""PeerIds whose bytes were validated (key parsed) and base58-encoded recently.
The same peers are parsed over and over (every DHT answer lists ~20), and each
validation parses an Ed25519 key; the cache is cleared when full."""
_VALIDATED: dict[bytes, str] = {}


def _invalid(message: str) -> NoReturn:
    raise InvalidKeyError(message)


def _read_uvarint(data: bytes, offset: int, what: str) -> tuple[int, int]:
    try:
        got = decode_uvarint(data, offset)
    except ProtocolError as exc:  # non-minimal or over-long varint
        raise InvalidKeyError(f"malformed {what}: {exc}") from exc
    if got is None:
        _invalid(f"truncated {what}")
    return got


@functools.total_ordering
class PeerId:
    """An immutable libp2p peer identifier (its multihash bytes).

    Hashable, and compared and ordered by those bytes.
    """

    __slots__ = ("_bytes", "_hash", "_str")

    _bytes: bytes
    _hash: int
    _str: str

    def __init__(self, multihash: bytes) -> None:
        """Wrap multihash bytes; prefer :meth:`from_bytes`, which is the same thing."""
        data = bytes(multihash)
        text = _VALIDATED.get(data)
        if text is None:
            self._validate(data)
            text = remember(_VALIDATED, data, b58encode(data), VALIDATED_CACHE_SIZE)
        object.__setattr__(self, "_bytes", data)
        # Routing tables, peer stores and lookups hash PeerIds millions of times
        # in a large simulation; the stored value saves a call to hash() in each.
        object.__setattr__(self, "_hash", hash(data))
        object.__setattr__(self, "_str", text)

    @staticmethod
    def _validate(data: bytes) -> None:
        code, offset = _read_uvarint(data, 0, "PeerId multihash")
        length, offset = _read_uvarint(data, offset, "PeerId multihash")
        if len(data) - offset != length:
            _invalid("PeerId multihash length does not match its digest")
        if code == MULTIHASH_SHA2_256:
            if length != 32:
                _invalid("sha2-256 PeerId digest must be 32 bytes")
        elif code == MULTIHASH_IDENTITY:
            if length > MAX_INLINE_KEY_LENGTH:
                _invalid(f"identity PeerId longer than {MAX_INLINE_KEY_LENGTH} bytes")
            public_key_from_protobuf(data[offset:])  # raises InvalidKeyError
        else:
            _invalid(f"unsupported PeerId multihash code 0x{code:x}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("PeerId is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("PeerId is immutable")

    def __reduce__(self) -> tuple[type[PeerId], tuple[bytes]]:
        return (PeerId, (self._bytes,))

    # ---------------------------------------------------------- constructors

    @classmethod
    def from_public_key(cls, key: PublicKey) -> PeerId:
        """The PeerId of ``key``.

        Identity multihash if its protobuf is at most 42 bytes, else sha2-256.
        """
        encoded = key.to_protobuf()
        if len(encoded) <= MAX_INLINE_KEY_LENGTH:
            mh = encode_uvarint(MULTIHASH_IDENTITY) + encode_uvarint(len(encoded)) + encoded
        else:
            mh = bytes((MULTIHASH_SHA2_256, 32)) + hashlib.sha256(encoded).digest()
        return cls(mh)

    @classmethod
    def from_bytes(cls, data: bytes) -> PeerId:
        """Parse multihash bytes; raises :class:`InvalidKeyError` unless it is a valid PeerId."""
        return cls(data)

    @classmethod
    def from_string(cls, text: str) -> PeerId:
        """Parse base58btc (``12D3KooW...``, ``Qm...``) or CIDv1 multibase text (``bafz...``)."""
        if not isinstance(text, str):
            raise InvalidKeyError("PeerId text must be a str")
        if not text or len(text) > MAX_PEER_ID_TEXT_LENGTH:
            raise InvalidKeyError("PeerId text is empty or too long")
        if text.startswith(("1", "Qm")):
            try:
                return cls(b58decode(text))
            except ValueError as exc:
                raise InvalidKeyError(f"invalid base58 PeerId {text!r}: {exc}") from exc
        try:
            cid = multibase_decode(text)
        except ValueError as exc:
            raise InvalidKeyError(f"invalid PeerId text {text!r}: {exc}") from exc
        return cls(cls._multihash_from_cid(cid))

    @staticmethod
    def _multihash_from_cid(cid: bytes) -> bytes:
        version, offset = _read_uvarint(cid, 0, "PeerId CID")
        if version != _CID_VERSION_1:
            _invalid("PeerId CID must be CIDv1")
        codec, offset = _read_uvarint(cid, offset, "PeerId CID")
        if codec != LIBP2P_KEY_CODEC:
            _invalid("PeerId CID must use the libp2p-key multicodec (0x72)")
        return cid[offset:]

    # ---------------------------------------------------------- conversions

    def to_bytes(self) -> bytes:
        """The multihash bytes (what goes in ``/p2p/`` binary multiaddrs and on the wire)."""
        return self._bytes

    def __bytes__(self) -> bytes:
        return self._bytes

    def to_base58(self) -> str:
        return self._str

    def to_cid(self) -> str:
        """CIDv1 text (libp2p-key codec, base32 multibase: ``bafz...``)."""
        cid = encode_uvarint(_CID_VERSION_1) + encode_uvarint(LIBP2P_KEY_CODEC) + self._bytes
        return multibase_encode(cid, "base32")

    def extract_public_key(self) -> PublicKey | None:
        """The inlined public key of an identity-multihash PeerId; None for hashed ones."""
        if self._bytes[0] != MULTIHASH_IDENTITY:
            return None
        _, offset = _read_uvarint(self._bytes, 1, "PeerId multihash")
        return public_key_from_protobuf(self._bytes[offset:])

    def matches_public_key(self, key: PublicKey) -> bool:
        """True if ``key`` is the key this PeerId names."""
        return PeerId.from_public_key(key)._bytes == self._bytes

    # ---------------------------------------------------------- dunder

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return f"PeerId({self._str!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PeerId):
            return NotImplemented
        return self._bytes == other._bytes

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, PeerId):
            return NotImplemented
        return self._bytes < other._bytes

    def __hash__(self) -> int:
        return self._hash
