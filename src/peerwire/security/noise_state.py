"""Noise Protocol Framework state objects (revision 34), for ``25519_ChaChaPoly_SHA256``.

This module is the pure cryptographic core of the Noise handshake: the
``CipherState``, ``SymmetricState`` and ``HandshakeState`` objects of section 5
of the Noise specification, with X25519, ChaCha20-Poly1305 and SHA-256 from
``cryptography``. It knows nothing of libp2p (payloads, signatures, framing
live in :mod:`peerwire.security.noise`) and nothing of I/O: messages go in and
out as ``bytes``. Keeping it separate lets us check it byte for byte against
the published cacophony/snow test vectors, which use a non-empty prologue and
fixed ephemeral keys, before any libp2p logic is layered on top.

Only the handshake patterns listed in :data:`PATTERNS` are accepted (libp2p
needs ``XX`` alone); the token interpreter itself is generic, so adding a
pattern without pre-messages is one table entry.

Errors:

* bad input from the remote (short message, failed authentication, a public
  key giving an all-zero DH output) raises :class:`~peerwire.errors.HandshakeError`
  from :class:`HandshakeState` and :class:`~peerwire.errors.ProtocolError` from
  a bare :class:`CipherState`;
* calling a method out of turn raises :class:`~peerwire.errors.UsageError`;
* a nonce reaching the reserved value ``2**64 - 1`` raises
  :class:`~peerwire.errors.LimitExceeded` when sending and
  :class:`~peerwire.errors.RemoteLimitExceeded` when receiving: a cipher key
  must never encrypt two messages with the same nonce.
"""

from __future__ import annotations

import struct
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ..errors import (
    HandshakeError,
    LimitExceeded,
    MessageTooLarge,
    ProtocolError,
    RemoteLimitExceeded,
    UsageError,
)

BytesLike = bytes | bytearray | memoryview

DHLEN: Final = 32
"""Length of an X25519 public key and of a DH output."""
HASHLEN: Final = 32
"""SHA-256 output length."""
TAGLEN: Final = 16
"""ChaCha20-Poly1305 authentication tag length."""
MAX_NONCE: Final = 2**64 - 1
"""Reserved nonce value: a cipher state whose ``n`` reaches it refuses to work."""
MAX_MESSAGE_SIZE: Final = 65535
"""Noise caps every message (handshake or transport) at 65535 bytes (spec section 3)."""

PATTERNS: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    # -> e
    # <- e, ee, s, es
    # -> s, se
    "XX": (("e",), ("e", "ee", "s", "es"), ("s", "se")),
}
"""Supported handshake patterns (none has pre-messages), by their Noise name."""

_nonce = struct.Struct("<4xQ").pack  # ChaChaPoly nonce: 32 zero bits, then n little-endian


def _hash(data: BytesLike) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()


def _hmac(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def hkdf(chaining_key: bytes, input_key_material: bytes) -> tuple[bytes, bytes]:
    """Noise's HKDF (spec section 4.3) with two outputs, all that MixKey and Split use.

    HMAC-SHA256 extract, then ``out1 = HMAC(temp, 0x01)``, ``out2 = HMAC(temp, out1 || 0x02)``.
    (The three-output form serves only pre-shared keys, which libp2p does not use.)
    """
    temp_key = _hmac(chaining_key, input_key_material)
    out1 = _hmac(temp_key, b"\x01")
    return out1, _hmac(temp_key, out1 + b"\x02")


class CipherState:
    """A cipher key ``k`` (possibly empty) and a 64-bit nonce ``n`` (spec section 5.1).

    With an empty key, encryption and decryption are the identity, as the
    spec requires for the first handshake message. The nonce advances on each
    successful call; a failed decryption leaves it unchanged.
    """

    __slots__ = ("_aead", "n")

    def __init__(self, key: bytes | None = None) -> None:
        self._aead: ChaCha20Poly1305 | None = None
        self.n = 0
        self.initialize_key(key)

    def initialize_key(self, key: bytes | None) -> None:
        """Set ``k`` (``None`` = empty) and reset ``n`` to zero."""
        self._aead = None if key is None else ChaCha20Poly1305(key)
        self.n = 0

    def has_key(self) -> bool:
        return self._aead is not None

    def set_nonce(self, nonce: int) -> None:
        """Set ``n`` explicitly (used by tests to reach the reserved nonce)."""
        if not 0 <= nonce <= MAX_NONCE:
            raise UsageError(f"nonce out of range: {nonce}")
        self.n = nonce

    def _next_send_nonce(self) -> bytes:
        n = self.n
        if n >= MAX_NONCE:
            raise LimitExceeded(
                "noise: send nonce exhausted; the connection must be closed",
                limit_name="noise_max_nonce",
                limit=MAX_NONCE - 1,
                value=n,
            )
        self.n = n + 1
        return _nonce(n)

    def encrypt_with_ad(self, ad: BytesLike, plaintext: BytesLike) -> bytes:
        """``ENCRYPT(k, n++, ad, plaintext)``, or ``plaintext`` itself while ``k`` is empty."""
        aead = self._aead
        if aead is None:
            return bytes(plaintext)
        return aead.encrypt(self._next_send_nonce(), plaintext, ad or None)

    def encrypt_into(self, plaintext: BytesLike, out: memoryview) -> None:
        """Encrypt with empty associated data straight into ``out``.

        ``out`` must be exactly ``len(plaintext) + TAGLEN`` bytes. This is the
        transport fast path: the caller lays out many frames in one buffer
        instead of allocating and concatenating a ciphertext per frame.
        """
        aead = self._aead
        if aead is None:
            raise UsageError("encrypt_into needs a keyed cipher state")
        aead.encrypt_into(self._next_send_nonce(), plaintext, None, out)

    def decrypt_with_ad(self, ad: BytesLike, ciphertext: BytesLike) -> bytes:
        """``DECRYPT(k, n++, ad, ciphertext)``, or ``ciphertext`` itself while ``k`` is empty.

        Raises :class:`ProtocolError` if authentication fails (``n`` is then
        left unchanged) and :class:`RemoteLimitExceeded` at the reserved nonce.
        """
        aead = self._aead
        if aead is None:
            return bytes(ciphertext)
        n = self.n
        if n >= MAX_NONCE:
            raise RemoteLimitExceeded(
                "noise: receive nonce exhausted; the connection must be closed",
                limit_name="noise_max_nonce",
                limit=MAX_NONCE - 1,
                value=n,
            )
        if len(ciphertext) < TAGLEN:
            raise ProtocolError(f"noise: {len(ciphertext)}-byte ciphertext is shorter than a tag")
        try:
            plaintext = aead.decrypt(_nonce(n), ciphertext, ad or None)
        except InvalidTag:
            raise ProtocolError("noise: message failed authentication") from None
        self.n = n + 1
        return plaintext


class SymmetricState:
    """The chaining key ``ck``, the handshake hash ``h`` and a :class:`CipherState` (5.2)."""

    __slots__ = ("cipher", "ck", "h")

    def __init__(self, protocol_name: bytes) -> None:
        if len(protocol_name) <= HASHLEN:
            self.h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            self.h = _hash(protocol_name)
        self.ck = self.h
        self.cipher = CipherState()

    def mix_key(self, input_key_material: bytes) -> None:
        self.ck, temp_k = hkdf(self.ck, input_key_material)
        self.cipher.initialize_key(temp_k)

    def mix_hash(self, data: BytesLike) -> None:
        self.h = _hash(self.h + bytes(data))

    def encrypt_and_hash(self, plaintext: BytesLike) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: BytesLike) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        """Return ``(c1, c2)``: c1 encrypts initiator-to-responder, c2 the other way."""
        k1, k2 = hkdf(self.ck, b"")
        return CipherState(k1), CipherState(k2)


def _public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


class HandshakeState:
    """One side of a Noise handshake (spec section 5.3), for a pattern in :data:`PATTERNS`.

    ``s`` is our static key pair; ``e`` may be given to make a run
    deterministic (test vectors) and is generated otherwise. Call
    :meth:`write_message` and :meth:`read_message` alternately, starting with
    ``write_message`` on the initiator; once :attr:`finished`, :meth:`split`
    returns the ``(send, receive)`` cipher states for our role.

    Any failure leaves the object unusable: Noise offers no recovery from a
    bad handshake message, and retrying with mutated state would be unsafe.
    """

    __slots__ = (
        "_e",
        "_failed",
        "_index",
        "_patterns",
        "_re",
        "_rs",
        "_s",
        "_symmetric",
        "initiator",
        "protocol_name",
    )

    def __init__(
        self,
        *,
        initiator: bool,
        s: X25519PrivateKey,
        pattern: str = "XX",
        prologue: BytesLike = b"",
        e: X25519PrivateKey | None = None,
    ) -> None:
        patterns = PATTERNS.get(pattern)
        if patterns is None:
            raise UsageError(f"unsupported Noise handshake pattern {pattern!r}")
        self.protocol_name = f"Noise_{pattern}_25519_ChaChaPoly_SHA256"
        self.initiator = initiator
        self._patterns = patterns
        self._index = 0
        self._failed = False
        self._s = s
        self._e = e
        self._re: X25519PublicKey | None = None
        self._rs: bytes | None = None
        self._symmetric = SymmetricState(self.protocol_name.encode("ascii"))
        self._symmetric.mix_hash(prologue)

    # -- introspection --------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once every message of the pattern has been written or read."""
        return self._index == len(self._patterns)

    @property
    def message_index(self) -> int:
        """How many handshake messages have been processed so far (0-based next index)."""
        return self._index

    @property
    def is_our_turn(self) -> bool:
        """Whether the next message is ours to write (initiator writes even indices)."""
        return not self.finished and (self._index % 2 == 0) == self.initiator

    @property
    def remote_static(self) -> bytes | None:
        """The remote's static public key, once its ``s`` token has been read."""
        return self._rs

    @property
    def local_static(self) -> bytes:
        """Our static public key (what the libp2p payload signature covers)."""
        return _public_bytes(self._s)

    @property
    def handshake_hash(self) -> bytes:
        """``h``: a channel-binding value identical on both sides after the handshake."""
        return self._symmetric.h

    # -- messages -------------------------------------------------------------

    def _check_turn(self, writing: bool) -> None:
        if self._failed:
            raise UsageError("noise handshake already failed")
        if self.finished:
            raise UsageError("noise handshake already finished")
        if self.is_our_turn != writing:
            raise UsageError(
                "not our turn to " + ("write" if writing else "read") + " a handshake message"
            )

    def _dh(self, local: X25519PrivateKey, remote: X25519PublicKey | None) -> bytes:
        if remote is None:  # pragma: no cover - impossible for a valid pattern
            raise UsageError("DH token before the remote key is known")
        try:
            return local.exchange(remote)
        except ValueError:
            # X25519 with a low-order point gives all zeros; cryptography refuses it.
            raise HandshakeError("noise: remote public key is a low-order point") from None

    def _mix_dh(self, token: str) -> None:
        e, s = self._e, self._s
        assert e is not None  # every DH token follows our own "e" in valid patterns
        rs = None if self._rs is None else X25519PublicKey.from_public_bytes(self._rs)
        if token == "ee":
            shared = self._dh(e, self._re)
        elif token == "ss":
            shared = self._dh(s, rs)
        elif (token == "es") == self.initiator:
            shared = self._dh(e, rs)
        else:
            shared = self._dh(s, self._re)
        self._symmetric.mix_key(shared)

    def write_message(self, payload: BytesLike = b"") -> bytes:
        """Produce the next handshake message carrying ``payload`` (section 5.3 WriteMessage)."""
        self._check_turn(writing=True)
        sym = self._symmetric
        parts: list[bytes] = []
        try:
            for token in self._patterns[self._index]:
                if token == "e":
                    if self._e is None:
                        self._e = X25519PrivateKey.generate()
                    e_pub = _public_bytes(self._e)
                    parts.append(e_pub)
                    sym.mix_hash(e_pub)
                elif token == "s":
                    parts.append(sym.encrypt_and_hash(_public_bytes(self._s)))
                else:
                    self._mix_dh(token)
            parts.append(sym.encrypt_and_hash(payload))
        except BaseException:
            self._failed = True
            raise
        message = b"".join(parts)
        if len(message) > MAX_MESSAGE_SIZE:
            self._failed = True
            raise MessageTooLarge(
                f"noise handshake message of {len(message)} bytes exceeds {MAX_MESSAGE_SIZE}",
                limit_name="MAX_MESSAGE_SIZE",
                limit=MAX_MESSAGE_SIZE,
                value=len(message),
            )
        self._index += 1
        return message

    def read_message(self, message: BytesLike) -> bytes:
        """Consume the remote's next handshake message and return its payload (ReadMessage).

        Raises :class:`HandshakeError` if the message is too long, too short
        for its tokens, fails authentication or carries a low-order key.
        """
        self._check_turn(writing=False)
        try:
            return self._read(memoryview(message).cast("B"))
        except BaseException:
            self._failed = True
            raise

    def _read(self, msg: memoryview) -> bytes:
        if len(msg) > MAX_MESSAGE_SIZE:
            raise HandshakeError(f"noise handshake message of {len(msg)} bytes is too long")
        sym = self._symmetric
        pos = 0
        try:
            for token in self._patterns[self._index]:
                if token == "e":
                    if len(msg) - pos < DHLEN:
                        raise HandshakeError("noise handshake message too short for 'e'")
                    re = bytes(msg[pos : pos + DHLEN])
                    pos += DHLEN
                    self._re = X25519PublicKey.from_public_bytes(re)
                    sym.mix_hash(re)
                elif token == "s":
                    size = DHLEN + TAGLEN if sym.cipher.has_key() else DHLEN
                    if len(msg) - pos < size:
                        raise HandshakeError("noise handshake message too short for 's'")
                    self._rs = sym.decrypt_and_hash(msg[pos : pos + size])
                    pos += size
                else:
                    self._mix_dh(token)
            payload = sym.decrypt_and_hash(msg[pos:])
        except HandshakeError:
            raise
        except ProtocolError as exc:
            raise HandshakeError(f"noise handshake message rejected: {exc}") from exc
        self._index += 1
        return payload

    def split(self) -> tuple[CipherState, CipherState]:
        """Return ``(send, receive)`` transport cipher states for our role."""
        if not self.finished or self._failed:
            raise UsageError("split() before the noise handshake finished")
        c1, c2 = self._symmetric.split()
        return (c1, c2) if self.initiator else (c2, c1)


__all__ = [
    "DHLEN",
    "HASHLEN",
    "MAX_MESSAGE_SIZE",
    "MAX_NONCE",
    "PATTERNS",
    "TAGLEN",
    "CipherState",
    "HandshakeState",
    "SymmetricState",
    "hkdf",
]
