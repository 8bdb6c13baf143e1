"""Transports: reliable byte streams between endpoints (TCP, in-process memory).

See :mod:`peerwire.transport.base` for the interface every transport implements
and :mod:`peerwire.testing.transport_suite` for the conformance suite they pass.
"""

from __future__ import annotations

from .base import (
    DEFAULT_WRITE_HIGH_WATER,
    Buffer,
    ConnectionReceiver,
    Listener,
    OnConnection,
    RawConnection,
    Transport,
)
from .memory import (
    MemoryConnection,
    MemoryListener,
    MemoryNetwork,
    MemoryPacket,
    MemoryTransport,
    default_network,
)
from .tcp import (
    DEFAULT_BACKLOG,
    DEFAULT_DIAL_TIMEOUT,
    DEFAULT_READ_BUFFER_SIZE,
    TcpConnection,
    TcpListener,
    TcpTransport,
)

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_DIAL_TIMEOUT",
    "DEFAULT_READ_BUFFER_SIZE",
    "DEFAULT_WRITE_HIGH_WATER",
    "Buffer",
    "ConnectionReceiver",
    "Listener",
    "MemoryConnection",
    "MemoryListener",
    "MemoryNetwork",
    "MemoryPacket",
    "MemoryTransport",
    "OnConnection",
    "RawConnection",
    "TcpConnection",
    "TcpListener",
    "TcpTransport",
    "Transport",
    "default_network",
]
