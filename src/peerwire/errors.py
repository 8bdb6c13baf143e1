"""The peerwire exception tree.

Every error peerwire raises derives from :class:`PeerwireError`, and the tree
keeps apart *who* is at fault, so callers can react without parsing messages::

    PeerwireError
    ├── UsageError          the caller misused the API (bad argument, wrong state)
    ├── LimitExceeded       a named local limit was hit (message size, streams, ...)
    │   └── MessageTooLarge
    ├── ProtocolError       the remote broke a protocol (bad bytes, bad signature, ...)
    │   ├── HandshakeError
    │   │   └── PeerIdMismatch
    │   ├── NegotiationError    no protocol both sides speak
    │   ├── InvalidKeyError     a key or PeerId that does not decode or verify
    │   └── RemoteLimitExceeded the remote overran one of our limits
    ├── Vetoed              a middleware hook refused the operation
    ├── ClosedError         the resource was closed by us
    ├── ConnectionLost      broken underneath (remote closed, reset, network failure)
    │   ├── StreamReset
    │   └── IncompleteReadError
    ├── RemoteError         the remote answered a request with an error
    │   └── ProtocolNotSupported
    └── Timeout             also a :class:`TimeoutError`

Sans-IO cores raise these directly; the asyncio adapters never turn one kind
into another, except that a remote's misbehaviour seen inside a core surfaces
to the user of a stream as :class:`ConnectionLost` / :class:`StreamReset` with
the :class:`ProtocolError` chained as its cause.
"""

from __future__ import annotations


class PeerwireError(Exception):
    """Root of every error raised by peerwire."""


class UsageError(PeerwireError, ValueError):
    """The caller did something wrong: a bad argument or a call in the wrong state."""


class LimitExceeded(PeerwireError):
    """A named limit was hit locally.

    ``limit_name`` is the :class:`peerwire.Config`/core config field that set it,
    ``limit`` its value and ``value`` what was attempted.
    """

    def __init__(self, message: str, *, limit_name: str = "", limit: int = 0, value: int = 0):
        super().__init__(message)
        self.limit_name = limit_name
        self.limit = limit
        self.value = value


class MessageTooLarge(LimitExceeded):
    """A message or frame larger than the configured maximum was about to be sent."""


class ProtocolError(PeerwireError):
    """The remote side broke a protocol: malformed, unexpected or forbidden input."""


class HandshakeError(ProtocolError):
    """A security handshake failed (bad message, bad signature, wrong key)."""


class PeerIdMismatch(HandshakeError):
    """The remote proved a key whose PeerId is not the one we dialled."""

    def __init__(self, expected: object, actual: object):
        super().__init__(f"expected peer {expected}, remote proved {actual}")
        self.expected = expected
        self.actual = actual


class NegotiationError(ProtocolError):
    """multistream-select found no protocol that both sides support."""


class InvalidKeyError(ProtocolError):
    """A public/private key, signature or PeerId could not be decoded or verified."""


class RemoteLimitExceeded(ProtocolError):
    """The remote overran one of our named limits (frame size, window, stream count)."""

    def __init__(self, message: str, *, limit_name: str = "", limit: int = 0, value: int = 0):
        super().__init__(message)
        self.limit_name = limit_name
        self.limit = limit
        self.value = value


class Vetoed(PeerwireError):
    """A middleware hook refused the operation (see :class:`peerwire.Hook`).

    Raised, for example, by ``connect`` when a ``WILL_DIAL`` or ``PEER_CONNECTED``
    hook returned False, and by ``Node.start`` when a ``NODE_WILL_START`` hook did.
    ``hook`` is the :class:`peerwire.Hook` whose chain refused.
    """

    def __init__(self, message: str, *, hook: object = None):
        super().__init__(message)
        self.hook = hook


class ClosedError(PeerwireError):
    """The stream, connection or node was closed by us."""


class ConnectionLost(PeerwireError):
    """The connection or stream broke underneath us (remote close, reset, network)."""


class StreamReset(ConnectionLost):
    """The stream was reset (by the remote, or because its connection failed)."""


class IncompleteReadError(ConnectionLost):
    """The stream ended before the requested number of bytes arrived."""

    def __init__(self, partial: bytes, expected: int):
        super().__init__(f"stream ended after {len(partial)} of {expected} bytes")
        self.partial = partial
        self.expected = expected


class RemoteError(PeerwireError):
    """The remote answered a request with an error: its handler raised or refused it.

    ``code`` is the wire error code (see ``peerwire.protocols.messaging.codec``),
    ``remote_message`` the text the remote sent.
    """

    def __init__(self, message: str, *, code: int = 0, remote_message: str = ""):
        super().__init__(message)
        self.code = code
        self.remote_message = remote_message


class ProtocolNotSupported(RemoteError):
    """The remote has no handler or inbox for the requested protocol."""


class Timeout(PeerwireError, TimeoutError):
    """An operation did not finish within its deadline."""


__all__ = [
    "ClosedError",
    "ConnectionLost",
    "HandshakeError",
    "IncompleteReadError",
    "InvalidKeyError",
    "LimitExceeded",
    "MessageTooLarge",
    "NegotiationError",
    "PeerIdMismatch",
    "PeerwireError",
    "ProtocolError",
    "ProtocolNotSupported",
    "RemoteError",
    "RemoteLimitExceeded",
    "StreamReset",
    "Timeout",
    "UsageError",
    "Vetoed",
]
