"""Connection upgrade: raw transport connection -> authenticated, encrypted, multiplexed.

The order is fixed (as in every libp2p implementation): multistream-select
picks a security protocol, the security handshake proves the remote's
identity, multistream-select (now encrypted) picks a muxer, and the muxer
session takes over the socket. Each step is a sans-IO core; this module is the
thin asyncio driver around them. It is not on the hot path, so it reads with
``await`` rather than callbacks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from ..config import MPLEX, NOISE, PLAINTEXT, YAMUX, Config
from ..errors import ConnectionLost, HandshakeError, NegotiationError
from ..mux.session import DEFAULT_STREAM_READ_BUFFER, MuxedConnection, SecureChannel
from ..mux.yamux import YamuxConfig, YamuxSession
from ..negotiate.multistream import MultistreamDialer, MultistreamListener
from ..security.noise import NoiseHandshake

if TYPE_CHECKING:
    from ..identity.identity import Identity
    from ..identity.keys import PublicKey
    from ..identity.peer_id import PeerId
    from ..mux.events import MuxerCore
    from ..transport.base import RawConnection


class _Negotiator(Protocol):
    @property
    def done(self) -> bool: ...

    @property
    def protocol(self) -> str | None: ...

    def data_to_send(self) -> bytes: ...

    def receive_data(self, data: bytes | bytearray | memoryview) -> None: ...

    def take_leftover(self) -> bytes: ...


class HandshakeChannel:
    """Receives raw bytes during the upgrade and lets the upgrader ``await`` them."""

    def __init__(self, raw: RawConnection) -> None:
        self._raw = raw
        self._chunks: deque[bytes] = deque()
        self._eof = False
        self._lost: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        raw.set_receiver(self)

    # ConnectionReceiver
    def data_received(self, data: memoryview) -> None:
        self._chunks.append(bytes(data))
        self._wake()

    def eof_received(self) -> None:
        self._eof = True
        self._wake()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._eof = True
        self._lost = exc or ConnectionLost("connection closed during handshake")
        self._wake()

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        """Next chunk of raw bytes; raises ConnectionLost if the connection ends."""
        while not self._chunks:
            if self._eof:
                raise ConnectionLost("remote closed the connection during the handshake") from (
                    self._lost
                )
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._chunks.popleft()

    def write(self, data: bytes) -> None:
        self._raw.write(data)

    def take_buffered(self) -> list[bytes]:
        chunks = list(self._chunks)
        self._chunks.clear()
        return chunks


async def negotiate(
    core: _Negotiator,
    read: Callable[[], Awaitable[bytes]],
    write: Callable[[bytes], object],
) -> tuple[str, bytes]:
    """Drive a multistream-select core to agreement; returns (protocol, leftover bytes).

    A listener holds its header until the dialer's first bytes arrive, so header
    and answer usually leave in one write (one packet fewer per connection); a
    dialer that waits for our header first still gets it after sending its own.
    """
    hold = isinstance(core, MultistreamListener)
    while True:
        out = b"" if hold else core.data_to_send()
        hold = False
        if out:
            result = write(out)
            if asyncio.iscoroutine(result):
                await result
        if core.done:
            break
        core.receive_data(await read())
    protocol = core.protocol
    if protocol is None:  # pragma: no cover - a core that is done always has one
        raise NegotiationError("negotiation finished without a protocol")
    # The listener may still owe its answer (sent above); the dialer's trailing bytes
    # beyond the agreement belong to the next layer.
    out = core.data_to_send()
    if out:
        result = write(out)
        if asyncio.iscoroutine(result):
            await result
    return protocol, core.take_leftover()


def _multistream(initiator: bool, protocols: tuple[str, ...]) -> _Negotiator:
    if initiator:
        return MultistreamDialer(list(protocols))
    allowed = frozenset(protocols)
    return MultistreamListener(allowed.__contains__)


class _Handshake(Protocol):
    @property
    def complete(self) -> bool: ...

    def data_to_send(self) -> bytes: ...

    def receive_data(self, data: bytes | bytearray | memoryview) -> None: ...


async def _handshake(core: _Handshake, leftover: bytes, channel: HandshakeChannel) -> None:
    """Drive a sans-IO security handshake (Noise or plaintext) to completion."""
    if leftover:
        core.receive_data(leftover)
    while True:
        out = core.data_to_send()
        if out:
            channel.write(out)
        if core.complete:
            return
        core.receive_data(await channel.read())


class _PlainChannel:
    """The security-layer stand-in for plaintext: frames nothing, encrypts nothing."""

    def encrypt_chunks(self, chunks: list[bytes]) -> list[bytes]:
        return chunks

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        return [bytes(data)]


async def upgrade(
    raw: RawConnection,
    *,
    identity: Identity,
    config: Config,
    expected_peer: PeerId | None = None,
) -> MuxedConnection:
    """Upgrade ``raw`` to a :class:`MuxedConnection`; the caller bounds it with a timeout.

    Raises a :class:`~peerwire.errors.ProtocolError` subclass (negotiation,
    handshake, PeerId mismatch) or :class:`ConnectionLost`; the raw connection
    is aborted on any failure.
    """
    try:
        return await _upgrade(raw, identity, config, expected_peer)
    except BaseException:
        raw.abort()
        raise


async def _upgrade(
    raw: RawConnection, identity: Identity, config: Config, expected_peer: PeerId | None
) -> MuxedConnection:
    initiator = raw.is_initiator
    channel = HandshakeChannel(raw)
    security, leftover = await negotiate(
        _multistream(initiator, config.security), channel.read, channel.write
    )

    secure: SecureChannel
    remote_peer: PeerId
    remote_key: PublicKey
    pending_plain: list[bytes]
    if security == NOISE:
        noise = NoiseHandshake(
            initiator=initiator, identity=identity.private_key, expected_peer=expected_peer
        )
        await _handshake(noise, leftover, channel)
        transport = noise.to_transport()
        secure = transport
        remote_peer, remote_key = noise.remote_peer, noise.remote_public_key
        pending_plain = transport.receive_data(b"")
    elif security == PLAINTEXT and config.allow_plaintext:
        from ..security.plaintext import PlaintextHandshake  # test-only: imported on demand

        plain = PlaintextHandshake(identity=identity.private_key, expected_peer=expected_peer)
        await _handshake(plain, leftover, channel)
        secure = _PlainChannel()
        remote_peer, remote_key = plain.remote_peer, plain.remote_public_key
        rest = plain.take_leftover()
        pending_plain = [rest] if rest else []
    else:  # pragma: no cover - the listener only accepts configured protocols
        raise HandshakeError(f"security protocol {security!r} is not enabled")

    async def read_plain() -> bytes:
        while pending_plain:
            chunk = pending_plain.pop(0)
            if chunk:
                return chunk
        while True:
            plaintexts = secure.receive_data(await channel.read())
            if plaintexts:
                return b"".join(plaintexts)

    def write_plain(data: bytes) -> None:
        raw.writelines(secure.encrypt_chunks([data]))

    muxer, leftover = await negotiate(
        _multistream(initiator, config.muxers), read_plain, write_plain
    )
    core: MuxerCore
    if muxer == YAMUX:
        core = YamuxSession(
            is_client=initiator,
            config=YamuxConfig(
                max_streams=config.max_streams_per_connection,
                receive_window=config.stream_receive_window,
            ),
        )
    elif muxer == MPLEX:
        from ..mux.mplex import MplexConfig, MplexSession  # imported when first negotiated

        core = MplexSession(
            is_client=initiator,
            config=MplexConfig(
                max_streams=config.max_streams_per_connection,
                max_message_size=config.max_mplex_message_size,
            ),
        )
    else:  # pragma: no cover
        raise NegotiationError(f"muxer {muxer!r} is not enabled")

    conn = MuxedConnection(
        raw,
        None if isinstance(secure, _PlainChannel) else secure,
        core,
        remote_peer=remote_peer,
        remote_public_key=remote_key,
        security_protocol=security,
        muxer_protocol=muxer,
        # yamux windows already bound each stream's unread bytes; only mplex (no flow
        # control) needs the socket paused for one slow stream.
        stream_read_buffer=(
            config.stream_receive_window + 1 if muxer == YAMUX else DEFAULT_STREAM_READ_BUFFER
        ),
    )
    initial = [leftover] if leftover else []
    initial.extend(chunk for chunk in pending_plain if chunk)
    buffered_raw = channel.take_buffered()
    conn.start(initial, buffered_raw)
    return conn
