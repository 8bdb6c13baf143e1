"""``Message``: what a handler, an inbox or a middleware hook receives."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ...identity.peer_id import PeerId

MessageKind = Literal["direct", "relay", "broadcast"]


@dataclass(slots=True, kw_only=True)
class Message:
    """One application message. Treat it as read-only (use :meth:`with_data` to change one).

    Not a frozen dataclass on purpose: one is built per received message and a
    frozen dataclass's ``__init__`` costs several times more.

    ``sender`` is the authenticated peer the bytes came from (the Noise-proven
    PeerId of the connection). ``author``/``signature`` are set only for signed
    messages: ``author`` is the PeerId whose key signed ``signature`` over the
    payload and metadata, which matters once messages are relayed.
    """

    data: bytes
    """The payload."""
    sender: PeerId
    """The directly connected peer that delivered the message."""
    protocol: str
    """The application protocol id, e.g. ``/chat/1.0.0``."""
    id: int
    """64-bit message id, unique per sender; replies carry the request's id."""
    kind: MessageKind = "direct"
    hops: int = 0
    """Relay hops travelled (0 for direct messages)."""
    timestamp_ms: int = 0
    """Sender's wall clock when the message was made (milliseconds since the epoch)."""
    client_version: str = ""
    """The sender's agent string (from the stream's hello)."""
    author: PeerId | None = None
    signature: bytes | None = None
    expects_reply: bool = False
    """True when the sender is waiting in ``request`` for an answer."""
    reply_channel: Any = field(default=None, repr=False, compare=False)
    """Internal: where ``node.reply(msg, data)`` sends the answer."""

    def with_data(self, data: bytes) -> Message:
        """A copy carrying other bytes (for middleware that transforms payloads)."""
        return replace(self, data=data)
