"""multistream-select 1.0 (``/multistream/1.0.0``) as two sans-IO state machines.

libp2p picks the protocol spoken on a fresh connection (security, then muxer)
and on every new stream with this tiny exchange::

    dialer   -> /multistream/1.0.0      listener -> /multistream/1.0.0
    dialer   -> /proto/a                listener -> na        (not available)
    dialer   -> /proto/b                listener -> /proto/b  (echo = agreed)

Every message is UTF-8 text plus a trailing ``"\\n"``, prefixed with its length
(newline included) as an unsigned varint. After the echo the channel belongs to
the agreed protocol, so any bytes that arrived behind the final negotiation
message are not ours: they are kept for :meth:`take_leftover`. go-libp2p and
js-libp2p routinely send header, proposal and the first application bytes in
one write, so this matters in practice.

Neither class does I/O: feed received bytes to ``receive_data`` and write
whatever ``data_to_send`` returns. Both cope with any chunking of the input,
down to one byte at a time.

**Lazy (optimistic) dialing** -- ``MultistreamDialer([p], lazy=True)``, as
js-libp2p does when it proposes a single protocol and go's ``NewMSSelect``:
the dialer is ``done`` at once with ``protocol == p`` and the caller may write
application data right behind ``data_to_send()`` without waiting a round
trip. The listener's header and echo still arrive later, so while
``lazy_pending`` is true the adapter must keep passing received bytes to
``receive_data``: the dialer consumes and checks the header and the echo,
raises :class:`NegotiationError` if the listener said ``na`` (the stream is then
unusable: the listener never saw our data as application data), and keeps
whatever follows the echo for ``take_leftover``. Once ``lazy_pending`` is false
the adapter takes the leftover (the first application bytes) and stops using
the dialer.

Limits: a message longer than :data:`MAX_MESSAGE_SIZE` is refused (go and js use
the same 1024 bytes), and a listener answers ``na`` at most ``max_proposals``
times before giving up, so a peer cannot keep it busy forever.

Errors: malformed input (wrong header, missing newline, bad UTF-8, non-minimal
length) raises :class:`ProtocolError`; over-long messages and too many proposals
raise :class:`RemoteLimitExceeded`; running out of protocols raises
:class:`NegotiationError`. After any error the object is dead and further
``receive_data`` calls raise :class:`UsageError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from ..errors import NegotiationError, ProtocolError, RemoteLimitExceeded, UsageError
from ..varint import encode_uvarint

MULTISTREAM_PROTOCOL = "/multistream/1.0.0"
"""The header both sides send first; it names multistream-select itself."""

MAX_MESSAGE_SIZE = 1024
"""Largest accepted message, in bytes, counting the trailing newline (as go and js)."""

MAX_PROPOSALS = 32
"""Default number of proposals a listener refuses before it drops the negotiation."""

NA = "na"
"""The listener's answer to a protocol it does not support."""

LS = "ls"
"""A dialer's request for the listener's protocol list."""

Buffer = bytes | bytearray | memoryview

_NEWLINE = 0x0A


@functools.lru_cache(maxsize=512)
def encode_message(text: str) -> bytes:
    """Frame one multistream message: varint length, UTF-8 text, newline.

    Memoized: a node frames the same handful of protocol ids on every stream.
    """
    body = text.encode() + b"\n"
    return encode_uvarint(len(body)) + body


def encode_protocol_list(protocols: Sequence[str]) -> bytes:
    """Frame the answer to ``ls``: one message holding one framed line per protocol.

    The body is the protocols, each as its own varint-prefixed ``"proto\\n"``
    line, followed by a final ``"\\n"`` so the outer message, like every other,
    ends in a newline (the layout of current rust-libp2p; js counts the
    line lengths without their newline).
    """
    inner = b"".join(encode_message(p) for p in protocols) + b"\n"
    return encode_uvarint(len(inner)) + inner


def _check_protocol(protocol: str) -> None:
    if not isinstance(protocol, str) or not protocol:
        raise UsageError(f"protocol ids must be non-empty strings, got {protocol!r}")
    if "\n" in protocol:
        raise UsageError(f"protocol id contains a newline: {protocol!r}")
    if protocol in (NA, LS, MULTISTREAM_PROTOCOL):
        raise UsageError(f"{protocol!r} is reserved by multistream-select")
    if len(protocol.encode()) + 1 > MAX_MESSAGE_SIZE:
        raise UsageError(f"protocol id longer than {MAX_MESSAGE_SIZE - 1} bytes: {protocol!r}")


class _Reader:
    """Incremental parser of multistream messages over a bytearray with an offset."""

    __slots__ = ("_buf", "_pos")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: Buffer) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_message(self) -> str | None:
        """Return the next complete message without its newline, or None if incomplete."""
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail == 0:
            return None
        first = buf[pos]
        if first < 0x80:
            length, head = first, 1
        else:
            # Lengths up to MAX_MESSAGE_SIZE fit in two varint bytes; a third
            # byte means the message is too long whatever the rest says, so we
            # refuse it without waiting for more input.
            if avail < 2:
                return None
            second = buf[pos + 1]
            if second >= 0x80:
                raise RemoteLimitExceeded(
                    "multistream message length prefix exceeds the limit",
                    limit_name="MAX_MESSAGE_SIZE",
                    limit=MAX_MESSAGE_SIZE,
                    value=(first & 0x7F) | ((second & 0x7F) << 7) | (1 << 14),
                )
            if second == 0:
                raise ProtocolError("non-minimal varint length in multistream message")
            length, head = (first & 0x7F) | (second << 7), 2
        if length > MAX_MESSAGE_SIZE:
            raise RemoteLimitExceeded(
                f"multistream message of {length} bytes exceeds {MAX_MESSAGE_SIZE}",
                limit_name="MAX_MESSAGE_SIZE",
                limit=MAX_MESSAGE_SIZE,
                value=length,
            )
        if length == 0:
            raise ProtocolError("empty multistream message (no trailing newline)")
        end = pos + head + length
        if len(buf) < end:
            return None
        if buf[end - 1] != _NEWLINE:
            raise ProtocolError("multistream message does not end with a newline")
        try:
            text = buf[pos + head : end - 1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("multistream message is not valid UTF-8") from exc
        self._pos = end
        return text

    def take_rest(self) -> bytes:
        rest = bytes(self._buf[self._pos :])
        self._buf = bytearray()
        self._pos = 0
        return rest


class _Negotiator:
    """State and plumbing shared by the dialer and the listener."""

    __slots__ = ("_done", "_failed", "_leftover", "_out", "_protocol", "_reader")

    def __init__(self) -> None:
        self._reader = _Reader()
        self._out = bytearray()
        self._leftover = bytearray()
        self._done = False
        self._failed = False
        self._protocol: str | None = None

    def data_to_send(self) -> bytes:
        """Return (and forget) the bytes to write to the peer."""
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def done(self) -> bool:
        """True once a protocol is agreed (for a lazy dialer: assumed)."""
        return self._done

    @property
    def protocol(self) -> str | None:
        """The agreed protocol, or None while negotiating."""
        return self._protocol

    def take_leftover(self) -> bytes:
        """Return (and forget) received bytes that follow the final negotiation message.

        They belong to the agreed protocol. Empty while negotiation (including a
        lazy dialer's pending confirmation) is still under way.
        """
        rest = bytes(self._leftover)
        self._leftover.clear()
        return rest

    def _finished(self) -> bool:
        return self._done

    def receive_data(self, data: Buffer) -> None:
        """Feed bytes received from the peer.

        Once negotiation is complete, further bytes simply join the leftover.
        """
        if self._failed:
            raise UsageError("multistream negotiation already failed")
        if self._finished():
            self._leftover += data
            return
        self._reader.feed(data)
        try:
            while not self._finished():
                msg = self._reader.next_message()
                if msg is None:
                    return
                self._handle(msg)
            self._leftover += self._reader.take_rest()
        except Exception:
            self._failed = True
            raise

    def _handle(self, msg: str) -> None:
        raise NotImplementedError


class MultistreamDialer(_Negotiator):
    """The proposing side: tries ``protocols`` in order until the listener echoes one.

    The header and the first proposal go out together (one round trip when
    the first choice is accepted); after each ``na`` the next proposal is sent.
    """

    __slots__ = ("_got_header", "_index", "_lazy_pending", "_protocols", "_tried")

    def __init__(self, protocols: Sequence[str], *, lazy: bool = False) -> None:
        super().__init__()
        self._protocols = list(protocols)
        if not self._protocols:
            raise UsageError("MultistreamDialer needs at least one protocol")
        for p in self._protocols:
            _check_protocol(p)
        if lazy and len(self._protocols) != 1:
            raise UsageError("lazy negotiation proposes exactly one protocol")
        self._index = 0
        self._tried: list[str] = []
        self._got_header = False
        self._lazy_pending = lazy
        self._out += encode_message(MULTISTREAM_PROTOCOL)
        self._out += encode_message(self._protocols[0])
        if lazy:
            self._done = True
            self._protocol = self._protocols[0]

    @property
    def lazy_pending(self) -> bool:
        """True while a lazy dialer still awaits the listener's header and echo.

        Keep feeding received bytes to :meth:`receive_data` until this turns
        false; then :meth:`take_leftover` holds the first application bytes.
        """
        return self._lazy_pending

    def _finished(self) -> bool:
        return self._done and not self._lazy_pending

    def _handle(self, msg: str) -> None:
        if not self._got_header:
            if msg != MULTISTREAM_PROTOCOL:
                raise ProtocolError(f"expected multistream header, got {msg[:64]!r}")
            self._got_header = True
            return
        proposal = self._protocols[self._index]
        if msg == proposal:
            self._done = True
            self._lazy_pending = False
            self._protocol = proposal
            return
        if msg != NA:
            raise ProtocolError(
                f"unexpected answer {msg[:64]!r} to proposal {proposal!r} (expected echo or na)"
            )
        self._tried.append(proposal)
        if self._lazy_pending:
            raise NegotiationError(f"listener refused lazily proposed protocol {proposal!r}")
        self._index += 1
        if self._index >= len(self._protocols):
            raise NegotiationError(f"listener supports none of the protocols tried: {self._tried}")
        self._out += encode_message(self._protocols[self._index])


class MultistreamListener(_Negotiator):
    """The answering side: echoes the first proposal ``supported`` accepts.

    The header is queued at construction, as go-libp2p does (the spec lets both
    sides send it at once). ``listing``, if given, answers ``ls`` requests;
    without it ``ls`` gets ``na``. Each refused proposal (``ls`` included)
    counts against ``max_proposals``.
    """

    __slots__ = ("_got_header", "_listing", "_max_proposals", "_refused", "_supported")

    def __init__(
        self,
        supported: Callable[[str], bool],
        *,
        listing: Callable[[], list[str]] | None = None,
        max_proposals: int = MAX_PROPOSALS,
    ) -> None:
        super().__init__()
        if max_proposals < 0:
            raise UsageError("max_proposals must be >= 0")
        self._supported = supported
        self._listing = listing
        self._max_proposals = max_proposals
        self._refused = 0
        self._got_header = False
        self._out += encode_message(MULTISTREAM_PROTOCOL)

    def _handle(self, msg: str) -> None:
        if not self._got_header:
            if msg != MULTISTREAM_PROTOCOL:
                raise ProtocolError(f"expected multistream header, got {msg[:64]!r}")
            self._got_header = True
            return
        if msg not in (NA, LS, MULTISTREAM_PROTOCOL) and self._supported(msg):
            self._out += encode_message(msg)
            self._done = True
            self._protocol = msg
            return
        self._refused += 1
        if self._refused > self._max_proposals:
            raise RemoteLimitExceeded(
                f"peer made more than {self._max_proposals} unsuccessful proposals",
                limit_name="max_proposals",
                limit=self._max_proposals,
                value=self._refused,
            )
        if msg == LS and self._listing is not None:
            self._out += encode_protocol_list(self._listing())
        else:
            self._out += encode_message(NA)


__all__ = [
    "LS",
    "MAX_MESSAGE_SIZE",
    "MAX_PROPOSALS",
    "MULTISTREAM_PROTOCOL",
    "NA",
    "MultistreamDialer",
    "MultistreamListener",
    "encode_message",
    "encode_protocol_list",
]
