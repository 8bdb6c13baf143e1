"""libp2p plaintext 2.0 (``/plaintext/2.0.0``): TEST-ONLY, INSECURE, NO ENCRYPTION.

!!! WARNING !!!  This "security" protocol encrypts nothing and authenticates
nothing. Each side merely *claims* a PeerId and a public key; anyone on the
path can read, forge, replay or rewrite every byte. It exists so tests and
interop checks can run the rest of the stack without Noise. The host offers
it only when a :class:`~peerwire.config.Config` explicitly sets
``allow_plaintext=True``; never enable it on a real network.

Spec: libp2p/specs ``plaintext/README.md``. Both sides immediately send one
uvarint-length-prefixed ``Exchange{id, pubkey}`` protobuf and check that the
remote's ``id`` is the PeerId of its ``pubkey`` (and, when dialling, that it is
the peer we expected). Sans-IO, with the same shape as
:class:`~peerwire.security.noise.NoiseHandshake`; bytes that follow the
remote's ``Exchange`` belong to the next layer (:meth:`PlaintextHandshake.take_leftover`).
"""

from __future__ import annotations

from typing import Final

from google.protobuf.message import DecodeError

from .._proto import keys_pb2, plaintext_pb2
from ..errors import HandshakeError, InvalidKeyError, PeerIdMismatch, ProtocolError, UsageError
from ..identity.keys import PrivateKey, PublicKey, public_key_from_protobuf
from ..identity.peer_id import PeerId
from ..varint import LengthPrefixedReader, encode_length_prefixed

__all__ = ["MAX_EXCHANGE_SIZE", "PLAINTEXT_PROTOCOL_ID", "PlaintextHandshake"]

PLAINTEXT_PROTOCOL_ID: Final = "/plaintext/2.0.0"
"""multistream-select protocol id of libp2p plaintext 2.0 (test-only)."""

MAX_EXCHANGE_SIZE: Final = 4096
"""Largest ``Exchange`` message accepted: a PeerId (<= 44 bytes) plus a public key
protobuf (at most 2048 bytes, see ``MAX_PUBLIC_KEY_PROTOBUF_SIZE``) and framing."""


class PlaintextHandshake:
    """One side of a plaintext 2.0 exchange (sans-IO, **test-only**).

    Our ``Exchange`` is queued at construction; :attr:`complete` turns true
    once the remote's has arrived and checked out. Failures raise
    :class:`HandshakeError` (:class:`PeerIdMismatch` for the wrong peer).
    """

    __slots__ = ("_expected_peer", "_failed", "_outbuf", "_reader", "_remote_key", "_remote_peer")

    def __init__(self, *, identity: PrivateKey, expected_peer: PeerId | None = None) -> None:
        self._expected_peer = expected_peer
        public = identity.public_key()
        exchange = plaintext_pb2.Exchange(
            id=PeerId.from_public_key(public).to_bytes(),
            pubkey=keys_pb2.PublicKey.FromString(public.to_protobuf()),
        )
        self._outbuf = encode_length_prefixed(exchange.SerializeToString())
        self._reader = LengthPrefixedReader(MAX_EXCHANGE_SIZE)
        self._remote_key: PublicKey | None = None
        self._remote_peer: PeerId | None = None
        self._failed = False

    @property
    def complete(self) -> bool:
        return self._remote_peer is not None

    @property
    def remote_peer(self) -> PeerId:
        """The PeerId the remote claimed (and whose key it sent); only once complete."""
        if self._remote_peer is None:
            raise UsageError("remote_peer is known only once the plaintext exchange is complete")
        return self._remote_peer

    @property
    def remote_public_key(self) -> PublicKey:
        if self._remote_key is None:
            raise UsageError("remote_public_key is known only once the exchange is complete")
        return self._remote_key

    def data_to_send(self) -> bytes:
        """Return (and forget) our queued ``Exchange`` message."""
        out, self._outbuf = self._outbuf, b""
        return out

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the connection; raises :class:`HandshakeError` on a bad exchange."""
        if self._failed:
            raise HandshakeError("plaintext exchange already failed")
        self._reader.feed(data)
        if self.complete:
            return  # next-layer bytes, kept for take_leftover()
        try:
            message = self._reader.next_message()
            if message is not None:
                self._accept(message)
        except ProtocolError as exc:
            self._failed = True
            if isinstance(exc, HandshakeError):
                raise
            raise HandshakeError(f"plaintext: bad exchange message: {exc}") from exc

    def take_leftover(self) -> bytes:
        """Bytes received after the remote's ``Exchange`` (they belong to the next layer)."""
        if not self.complete:
            raise UsageError("take_leftover() before the plaintext exchange is complete")
        return self._reader.take_buffered()

    def _accept(self, message: bytes) -> None:
        try:
            exchange = plaintext_pb2.Exchange.FromString(message)
        except DecodeError as exc:
            raise HandshakeError(f"plaintext: malformed Exchange: {exc}") from exc
        if not exchange.id or not exchange.HasField("pubkey"):
            raise HandshakeError("plaintext: Exchange lacks an id or a public key")
        try:
            key = public_key_from_protobuf(exchange.pubkey.SerializeToString())
            claimed = PeerId.from_bytes(exchange.id)
        except InvalidKeyError as exc:
            raise HandshakeError(f"plaintext: invalid key or PeerId: {exc}") from exc
        actual = PeerId.from_public_key(key)
        if claimed != actual:
            raise HandshakeError(f"plaintext: claimed id {claimed} is not the PeerId of its key")
        if self._expected_peer is not None and actual != self._expected_peer:
            raise PeerIdMismatch(self._expected_peer, actual)
        self._remote_key = key
        self._remote_peer = actual
