"""libp2p Noise (``/noise``): the XX handshake with libp2p identities, and framed transport.

Spec: libp2p/specs ``noise/README.md``. The protocol is
``Noise_XX_25519_ChaChaPoly_SHA256`` with an empty prologue::

    -> e                      (message 1: no payload)
    <- e, ee, s, es           (message 2: responder's NoiseHandshakePayload)
    -> s, se                  (message 3: initiator's NoiseHandshakePayload)

Each side proves that its libp2p identity key owns its Noise static key by
signing ``"noise-libp2p-static-key:" || static_public_key``. A payload travels
only in messages that already have forward secrecy (2 and 3), and the
initiator checks the responder's identity (and ``expected_peer``) *before* it
reveals its own in message 3. We send no ``extensions`` (no early muxer
negotiation) and ignore any the remote sends.

On the wire every handshake and transport message is ``u16 big-endian length
|| message``, at most :data:`MAX_NOISE_FRAME` (65535) bytes, so a transport
frame carries at most :data:`MAX_PLAINTEXT` (65519) bytes of plaintext.

Both classes are sans-IO: bytes in, bytes out, no clock, no socket. Usage::

    hs = NoiseHandshake(initiator=True, identity=key, expected_peer=peer)
    write(hs.data_to_send())
    while not hs.complete:
        hs.receive_data(read())
        write(hs.data_to_send())          # flush message 2 or 3 when one is produced
    transport = hs.to_transport()
    early = transport.receive_data(b"")   # plaintext that arrived with the last message

Errors: a malformed, tampered or unauthenticated handshake raises
:class:`~peerwire.errors.HandshakeError` (:class:`~peerwire.errors.PeerIdMismatch`
when the remote proves a different peer than expected); a transport frame that
fails authentication raises :class:`~peerwire.errors.ProtocolError`. Both are
fatal: the object refuses further input and the connection must be closed.
"""

from __future__ import annotations

import struct
from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf.message import DecodeError

from .._proto import noise_pb2
from ..errors import HandshakeError, InvalidKeyError, PeerIdMismatch, ProtocolError, UsageError
from ..identity.keys import PrivateKey, PublicKey, public_key_from_protobuf
from ..identity.peer_id import PeerId
from .noise_state import DHLEN, TAGLEN, CipherState, HandshakeState

__all__ = [
    "MAX_NOISE_FRAME",
    "MAX_PLAINTEXT",
    "NOISE_PROTOCOL_ID",
    "STATIC_KEY_SIGNATURE_PREFIX",
    "NoiseHandshake",
    "NoiseTransport",
]

BytesLike = bytes | bytearray | memoryview

NOISE_PROTOCOL_ID: Final = "/noise"
"""multistream-select protocol id of noise-libp2p."""

MAX_NOISE_FRAME: Final = 65535
"""Largest Noise message (handshake or transport); the u16 length prefix cannot say more."""

MAX_PLAINTEXT: Final = MAX_NOISE_FRAME - TAGLEN
"""Most plaintext one transport frame carries (65519): the frame also holds a 16-byte tag."""

STATIC_KEY_SIGNATURE_PREFIX: Final = b"noise-libp2p-static-key:"
"""What the identity key signs, followed by the 32-byte X25519 static public key."""

_MESSAGE1_SIZE: Final = DHLEN
"""Message 1 is exactly the initiator's ephemeral key: libp2p puts no payload in it."""

_u16 = struct.Struct(">H")
_pack_len = _u16.pack
_pack_len_into = _u16.pack_into


class NoiseHandshake:
    """One side of a noise-libp2p handshake (sans-IO).

    ``identity`` is our libp2p key; ``expected_peer`` (normally given by the
    dialer) makes the handshake fail with :class:`PeerIdMismatch` unless the
    remote proves that PeerId. ``static_key`` and ``ephemeral_key`` default to
    fresh X25519 keys; pass them only for deterministic tests (the spec
    advises against persisting Noise static keys).

    The initiator's first message is queued at construction. Once
    :attr:`complete`, flush :meth:`data_to_send` (the initiator's message 3)
    and call :meth:`to_transport`.
    """

    __slots__ = (
        "_expected_peer",
        "_failed",
        "_identity",
        "_inbuf",
        "_outbuf",
        "_remote_key",
        "_remote_peer",
        "_state",
        "_transport_taken",
    )

    def __init__(
        self,
        *,
        initiator: bool,
        identity: PrivateKey,
        expected_peer: PeerId | None = None,
        static_key: X25519PrivateKey | None = None,
        ephemeral_key: X25519PrivateKey | None = None,
    ) -> None:
        self._identity = identity
        self._expected_peer = expected_peer
        self._state = HandshakeState(
            initiator=initiator,
            s=static_key if static_key is not None else X25519PrivateKey.generate(),
            e=ephemeral_key,
            prologue=b"",
        )
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._remote_key: PublicKey | None = None
        self._remote_peer: PeerId | None = None
        self._failed = False
        self._transport_taken = False
        if initiator:
            self._write(b"")

    # -- public API -----------------------------------------------------------

    @property
    def initiator(self) -> bool:
        return self._state.initiator

    @property
    def complete(self) -> bool:
        """True once the remote is authenticated and our last message is queued."""
        return self._remote_peer is not None and self._state.finished

    @property
    def remote_peer(self) -> PeerId:
        """The PeerId the remote proved (only after :attr:`complete`)."""
        if self._remote_peer is None or not self.complete:
            raise UsageError("remote_peer is known only once the noise handshake is complete")
        return self._remote_peer

    @property
    def remote_public_key(self) -> PublicKey:
        """The remote's libp2p identity key (only after :attr:`complete`)."""
        if self._remote_key is None or not self.complete:
            raise UsageError("remote_public_key is known only once the handshake is complete")
        return self._remote_key

    def data_to_send(self) -> bytes:
        """Return (and forget) the framed handshake messages waiting to be written."""
        out = bytes(self._outbuf)
        self._outbuf.clear()
        return out

    def receive_data(self, data: BytesLike) -> None:
        """Feed bytes read from the connection.

        Complete handshake messages are processed at once; a partial one is
        buffered. Bytes after the final message are kept for the transport.
        Raises :class:`HandshakeError` (or :class:`PeerIdMismatch`) on any
        failure, after which every further call raises too.
        """
        if self._transport_taken:
            raise UsageError("receive_data() after to_transport(): feed the transport instead")
        if self._failed:
            raise HandshakeError("noise handshake already failed")
        self._inbuf += data
        if self._state.finished:
            return  # transport data that arrived early; to_transport() hands it over
        try:
            self._process_input()
        except BaseException:
            self._failed = True
            raise

    def to_transport(self) -> NoiseTransport:
        """The transport cipher states, with any bytes received past the handshake.

        Those bytes are not decrypted yet: call ``receive_data(b"")`` on the
        result once to collect them. Raises :class:`UsageError` before
        :attr:`complete`, if handshake bytes are still unsent, or if called twice.
        """
        if not self.complete or self._failed:
            raise UsageError("to_transport() before the noise handshake is complete")
        if self._outbuf:
            raise UsageError("to_transport() with handshake data unsent: call data_to_send()")
        if self._transport_taken:
            raise UsageError("to_transport() called twice")
        self._transport_taken = True
        send, recv = self._state.split()
        transport = NoiseTransport(send, recv, buffered=bytes(self._inbuf))
        self._inbuf.clear()
        return transport

    # -- internals ------------------------------------------------------------

    def _write(self, payload: bytes) -> None:
        message = self._state.write_message(payload)  # enforces MAX_NOISE_FRAME
        self._outbuf += _pack_len(len(message))
        self._outbuf += message

    def _process_input(self) -> None:
        buf = self._inbuf
        pos = 0
        while not self._state.finished and len(buf) - pos >= 2:
            size = (buf[pos] << 8) | buf[pos + 1]
            end = pos + 2 + size
            if end > len(buf):
                break
            message = bytes(buf[pos + 2 : end])
            pos = end
            if self._handle_message(message) and pos != len(buf):
                # We just answered this message and the remote cannot have seen
                # the answer yet, so whatever it sent along with it is bogus.
                raise HandshakeError("noise: unexpected data before our handshake reply was sent")
        if pos:
            del buf[:pos]

    def _handle_message(self, message: bytes) -> bool:
        """Process one handshake message; return True if we queued a reply to it."""
        state = self._state
        if state.message_index == 0:  # responder reads message 1
            if len(message) != _MESSAGE1_SIZE:
                raise HandshakeError(
                    f"noise message 1 must be {_MESSAGE1_SIZE} bytes, got {len(message)}"
                )
            state.read_message(message)
            self._write(self._our_payload())
            return True
        if state.message_index == 1:  # initiator reads message 2
            self._verify_payload(state.read_message(message))
            self._write(self._our_payload())
            return True
        # responder reads message 3; bytes after it are the initiator's early transport data
        self._verify_payload(state.read_message(message))
        return False

    def _our_payload(self) -> bytes:
        signature = self._identity.sign(STATIC_KEY_SIGNATURE_PREFIX + self._state.local_static)
        payload = noise_pb2.NoiseHandshakePayload(
            identity_key=self._identity.public_key().to_protobuf(),
            identity_sig=signature,
        )
        return payload.SerializeToString()

    def _verify_payload(self, payload: bytes) -> None:
        try:
            decoded = noise_pb2.NoiseHandshakePayload.FromString(payload)
        except DecodeError as exc:
            raise HandshakeError(f"noise: malformed handshake payload: {exc}") from exc
        if not decoded.identity_key or not decoded.identity_sig:
            raise HandshakeError("noise: handshake payload lacks an identity key or signature")
        try:
            key = public_key_from_protobuf(decoded.identity_key)
        except InvalidKeyError as exc:
            raise HandshakeError(f"noise: bad identity key in handshake payload: {exc}") from exc
        remote_static = self._state.remote_static
        assert remote_static is not None  # the "s" token precedes every payload we verify
        if not key.verify(STATIC_KEY_SIGNATURE_PREFIX + remote_static, decoded.identity_sig):
            raise HandshakeError("noise: identity signature over the static key is invalid")
        peer = PeerId.from_public_key(key)
        if self._expected_peer is not None and peer != self._expected_peer:
            raise PeerIdMismatch(self._expected_peer, peer)
        self._remote_key = key
        self._remote_peer = peer


class NoiseTransport:
    """Encrypts and decrypts framed Noise transport messages (sans-IO).

    Built by :meth:`NoiseHandshake.to_transport`. Nothing here keeps a
    reference to caller buffers, so a receive buffer may be reused as soon as
    :meth:`receive_data` returns. An authentication failure is fatal.
    """

    __slots__ = ("_early", "_failed", "_partial", "_recv", "_send")

    def __init__(self, send: CipherState, recv: CipherState, *, buffered: bytes = b"") -> None:
        self._send = send
        self._recv = recv
        self._early = buffered  # received with the handshake; decrypted on the next call
        self._partial = bytearray()  # at most one incomplete frame (<= 2 + 65535 bytes)
        self._failed = False

    # -- sending --------------------------------------------------------------

    def encrypt(self, plaintext: BytesLike) -> bytearray:
        """Encrypt ``plaintext`` of any length into framed wire bytes.

        Data over :data:`MAX_PLAINTEXT` is split across frames. All frames are
        written into one preallocated buffer (no per-frame concatenation: for
        1 MiB that is ~2.5x faster than joining ciphertexts). Empty input
        yields no frame.
        """
        src = memoryview(plaintext).cast("B")
        total = len(src)
        if total == 0:
            return bytearray()
        frames = -(-total // MAX_PLAINTEXT)
        out = bytearray(total + frames * (2 + TAGLEN))
        encrypt_into = self._send.encrypt_into
        with memoryview(out) as view:
            pos = 0
            for start in range(0, total, MAX_PLAINTEXT):
                chunk = src[start : start + MAX_PLAINTEXT]
                sealed = len(chunk) + TAGLEN
                _pack_len_into(view, pos, sealed)
                encrypt_into(chunk, view[pos + 2 : pos + 2 + sealed])
                pos += 2 + sealed
        return out

    def encrypt_chunks(self, chunks: list[bytes]) -> list[bytes]:
        """Coalesce many writes into as few frames as possible; return wire pieces.

        This is the hot path: packing e.g. 63 x 1 KiB muxer frames into one
        Noise frame costs one AEAD call instead of 63. The chunks are one byte
        stream (joined once, then cut at :data:`MAX_PLAINTEXT`), so a chunk
        may straddle two frames. The result alternates 2-byte length headers
        and ciphertexts, ready for ``transport.writelines``; no chunks, or
        only empty ones, yield no frame.
        """
        plaintext = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        total = len(plaintext)
        encrypt = self._send.encrypt_with_ad
        if total <= MAX_PLAINTEXT:  # the common case: one frame
            if not total:
                return []
            return [_pack_len(total + TAGLEN), encrypt(b"", plaintext)]
        out: list[bytes] = []
        view = memoryview(plaintext)
        for start in range(0, total, MAX_PLAINTEXT):
            frame = view[start : start + MAX_PLAINTEXT]
            out.append(_pack_len(len(frame) + TAGLEN))
            out.append(encrypt(b"", frame))
        return out

    # -- receiving ------------------------------------------------------------

    def receive_data(self, data: BytesLike) -> list[bytes]:
        """Decrypt every complete frame in the bytes received so far.

        Returns the plaintext of each complete frame in order (frames with an
        empty plaintext are skipped); a trailing partial frame is buffered.
        Raises :class:`ProtocolError` if a frame fails authentication or is
        shorter than a tag; the transport is then dead.
        """
        if self._failed:
            raise ProtocolError("noise transport already failed")
        if self._early:
            data = self._early + bytes(data)
            self._early = b""
        out: list[bytes] = []
        try:
            self._receive(memoryview(data).cast("B"), out)
        except BaseException:
            self._failed = True
            raise
        return out

    def _receive(self, data: memoryview, out: list[bytes]) -> None:
        pos = 0
        end = len(data)
        partial = self._partial
        if partial:
            # Complete the pending frame with just the bytes it needs, so the
            # rest of ``data`` is parsed in place rather than copied.
            if len(partial) < 2:
                take = min(2 - len(partial), end)
                partial += data[:take]
                pos = take
                if len(partial) < 2:
                    return
            need = 2 + ((partial[0] << 8) | partial[1]) - len(partial)
            take = min(need, end - pos)
            partial += data[pos : pos + take]
            pos += take
            if take < need:
                return
            with memoryview(partial) as view:
                plaintext = self._recv.decrypt_with_ad(b"", view[2:])
            partial.clear()
            if plaintext:
                out.append(plaintext)
        decrypt = self._recv.decrypt_with_ad
        while end - pos >= 2:
            stop = pos + 2 + ((data[pos] << 8) | data[pos + 1])
            if stop > end:
                break
            plaintext = decrypt(b"", data[pos + 2 : stop])
            if plaintext:
                out.append(plaintext)
            pos = stop
        if pos < end:
            partial += data[pos:]
