"""Node configuration: every limit peerwire enforces, with its default, in one place.

Each field is a named limit or policy; breaking a limit raises an error that
names the field (``LimitExceeded.limit_name``), so a user who hits one knows
which knob to turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import __version__
from .errors import UsageError
from .overlay.chord.config import ChordConfig
from .protocols.broadcast.config import BroadcastConfig
from .protocols.kad.config import KadConfig
from .protocols.relay.config import RelayConfig

NOISE = "/noise"
PLAINTEXT = "/plaintext/2.0.0"
YAMUX = "/yamux/1.0.0"
MPLEX = "/mplex/6.7.0"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything a :class:`peerwire.Node` can be tuned with. All fields keyword-only."""

    agent_version: str = f"peerwire/{__version__}"
    """Sent in identify; what other peers see as our implementation."""
    protocol_version: str = "ipfs/0.1.0"
    """Identify's protocolVersion (the libp2p network family)."""

    security: tuple[str, ...] = (NOISE,)
    """Security protocols we offer/accept, in preference order. Plaintext
    (``/plaintext/2.0.0``) is refused unless listed here *and* ``allow_plaintext``."""
    allow_plaintext: bool = False
    """Must be True to list plaintext in ``security``: an explicit, test-only opt-in."""
    muxers: tuple[str, ...] = (YAMUX, MPLEX)
    """Stream multiplexers we offer/accept, in preference order."""

    max_connections: int = 512
    """Open connections (both directions). Inbound beyond it are refused at once;
    an outbound dial beyond it raises LimitExceeded."""
    max_pending_handshakes: int = 64
    """Inbound connections still in their security/muxer handshake at once."""
    max_streams_per_connection: int = 1024
    """Concurrent streams per connection (enforced by the muxer)."""
    max_inbound_stream_negotiations: int = 256
    """Inbound streams per connection still negotiating their protocol at once."""
    stream_receive_window: int = 4 << 20
    """yamux per-stream receive window (bytes in flight the remote may send unread).
    4 MiB keeps a 1 MiB-message stream moving without waiting for window updates
    (~30% more throughput than 1 MiB); unread bytes per connection are still capped
    by the session (16 MiB: then the socket is not read until readers catch up)."""
    max_mplex_message_size: int = 1 << 20
    """Largest mplex frame accepted (mplex spec: 1 MiB)."""

    handshake_timeout: float = 10.0
    """Seconds for the whole connection upgrade (multistream, Noise, muxer)."""
    negotiate_timeout: float = 10.0
    """Seconds for multistream-select on a new stream."""
    dial_timeout: float = 10.0
    """Seconds for the transport to establish a connection."""
    idle_timeout: float = 300.0
    """Close a connection that has had no open stream for this long (0: never)."""
    identify_timeout: float = 10.0
    """Seconds to wait for the remote's identify message."""

    max_message_size: int = 4 << 20
    """Largest /peerwire/msg envelope sent or accepted (payload plus ~30 bytes)."""
    message_workers: int = 8
    """Tasks that run async message handlers (sync handlers run inline)."""
    message_queue_size: int = 1024
    """Messages waiting for a worker; when full, reading from the senders pauses."""
    inbox_size: int = 1024
    """Default capacity of ``node.inbox(protocol)``; when full, senders are slowed down."""
    max_pending_requests: int = 65536
    """Requests awaiting a reply at once (LimitExceeded beyond)."""
    request_timeout: float = 30.0
    """Default ``request`` timeout in seconds when none is given."""
    sign_messages: bool = False
    """Sign every outgoing message with our identity key (Ed25519 verify costs
    ~0.1 ms per message at the receiver, so it is off by default)."""
    require_signed_messages: bool = False
    """Drop unsigned incoming messages."""
    message_max_clock_skew: float = 300.0
    """Drop messages whose timestamp is further than this from our clock (0: no check)."""

    extra_listen_announce: tuple[str, ...] = field(default_factory=tuple)
    """Extra multiaddrs to announce in identify (e.g. a public address)."""

    kad: KadConfig = field(default_factory=KadConfig)
    """Kademlia DHT settings (k, alpha, timeouts, record limits, client/server mode),
    used when the node runs ``overlay="kademlia"``. See
    :class:`peerwire.protocols.kad.KadConfig`."""

    chord: ChordConfig = field(default_factory=ChordConfig)
    """Chord overlay settings (finger successors, list sizes, stabilisation period,
    RPC and lookup timeouts, pruning), used when the node runs ``overlay="chord"``.
    See :class:`peerwire.overlay.chord.ChordConfig`."""

    relay: RelayConfig = field(default_factory=RelayConfig)
    """Routed messages (``node.route`` / ``route_request``): TTL, retries, signing,
    replay window, forwarding queue. See :class:`peerwire.protocols.relay.config.RelayConfig`."""
    broadcast: BroadcastConfig = field(default_factory=BroadcastConfig)
    """``node.broadcast``: hop limit, seen-cache size and expiry, pull fetch timeout,
    queues. See :class:`peerwire.protocols.broadcast.config.BroadcastConfig`."""

    def __post_init__(self) -> None:
        if not self.security:
            raise UsageError("Config.security must list at least one protocol")
        if PLAINTEXT in self.security and not self.allow_plaintext:
            raise UsageError("plaintext security is test-only: set allow_plaintext=True to list it")
        unknown = set(self.security) - {NOISE, PLAINTEXT}
        if unknown:
            raise UsageError(f"unknown security protocols: {sorted(unknown)}")
        if not self.muxers or set(self.muxers) - {YAMUX, MPLEX}:
            raise UsageError(f"muxers must be a non-empty subset of {YAMUX!r}, {MPLEX!r}")
        for name in (
            "max_connections",
            "max_pending_handshakes",
            "max_streams_per_connection",
            "max_inbound_stream_negotiations",
            "message_workers",
            "message_queue_size",
            "inbox_size",
            "max_pending_requests",
        ):
            if getattr(self, name) < 1:
                raise UsageError(f"Config.{name} must be >= 1")
        if self.max_message_size < 1024:
            raise UsageError("Config.max_message_size must be >= 1024")
        if self.stream_receive_window < 256 * 1024:
            raise UsageError("Config.stream_receive_window must be >= 256 KiB (yamux minimum)")
