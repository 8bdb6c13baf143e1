"""peerwire: a fast, secure, asyncio-native peer-to-peer network stack.

import peerwire as pw
async with pw.Node(listen=["/ip4/127.0.0.1/tcp/0"]) as node:
    print(node.peer_id, node.addrs)
"""

__version__ = "0.1.0"

from .config import Config
from .errors import (
    ClosedError,
    ConnectionLost,
    HandshakeError,
    IncompleteReadError,
    InvalidKeyError,
    LimitExceeded,
    MessageTooLarge,
    NegotiationError,
    PeerIdMismatch,
    PeerwireError,
    ProtocolError,
    ProtocolNotSupported,
    RemoteError,
    RemoteLimitExceeded,
    StreamReset,
    Timeout,
    UsageError,
    Vetoed,
)
from .host.middleware import Hook
from .identity.identity import Identity
from .identity.multiaddr import Multiaddr
from .identity.peer_id import PeerId
from .mux.stream import Stream
from .node import Node
from .protocols.broadcast.core import BroadcastStats
from .protocols.identify import IdentifyInfo
from .protocols.messaging import Inbox, Message
from .protocols.relay.service import RelayStats, Unroutable

__all__ = [
    "BroadcastStats",
    "ClosedError",
    "Config",
    "ConnectionLost",
    "HandshakeError",
    "Hook",
    "IdentifyInfo",
    "Identity",
    "Inbox",
    "IncompleteReadError",
    "InvalidKeyError",
    "LimitExceeded",
    "Message",
    "MessageTooLarge",
    "Multiaddr",
    "NegotiationError",
    "Node",
    "PeerId",
    "PeerIdMismatch",
    "PeerwireError",
    "ProtocolError",
    "ProtocolNotSupported",
    "RelayStats",
    "RemoteError",
    "RemoteLimitExceeded",
    "Stream",
    "StreamReset",
    "Timeout",
    "Unroutable",
    "UsageError",
    "Vetoed",
    "__version__",
]
