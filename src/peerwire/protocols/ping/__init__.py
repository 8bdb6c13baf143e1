"""libp2p ping."""

from .ping import PING_PROTOCOL, handle_ping, ping

__all__ = ["PING_PROTOCOL", "handle_ping", "ping"]
