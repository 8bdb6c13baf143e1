"""``KadConfig``: every knob and limit of the Kademlia DHT, with its default.

Reached as ``peerwire.Config(kad=KadConfig(...))``. Time values are seconds on
the event loop's clock (``loop.time()``), so under the simulator's virtual
clock they are virtual seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ...errors import UsageError
from .records import Validator, default_validator
from .routing import DEFAULT_PING_AFTER

KAD_PROTOCOL = "/ipfs/kad/1.0.0"
"""The libp2p Kademlia protocol id (the public "Amino" DHT and every libp2p implementation)."""

HOUR = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class KadConfig:
    """Kademlia DHT settings. All fields keyword-only; the defaults follow libp2p."""

    mode: Literal["server", "client"] = "server"
    """``"server"`` answers ``/ipfs/kad/1.0.0`` and so gets into other peers' routing
    tables; ``"client"`` only asks (for nodes that are not dialable or must not
    carry load). Switch at run time with ``node.dht.set_mode``."""
    protocol: str = KAD_PROTOCOL
    """Protocol id. A private DHT (e.g. ``/myapp/kad/1.0.0``) keeps its peers out of the
    public one."""

    k: int = 20
    """Bucket size and replication factor: peers per bucket, peers a lookup must hear
    from before it ends, peers a record is stored on (spec: 20)."""
    alpha: int = 3
    """Requests one lookup keeps in flight at once (spec: 3)."""
    bucket_count: int = 256
    """Most buckets the routing table unfolds into (256 = one per bit of the key
    space). Fewer caps the table: peers sharing more prefix bits with us share the
    last bucket."""

    request_timeout: float = 10.0
    """Seconds for one RPC (dial, stream negotiation, request and answer). A lookup
    stops waiting for a peer after this long and treats it as failed."""
    lookup_timeout: float = 60.0
    """Seconds for one whole lookup; it ends with what it has by then."""
    inbound_timeout: float = 10.0
    """Seconds a remote has to send each request on a stream it opened to us."""

    refresh_interval: float = 600.0
    """A bucket no lookup has passed through for this long is refreshed with a lookup
    of a random key in it (go-libp2p: 10 min). 0 disables periodic refresh."""
    maintenance_interval: float = 60.0
    """Period of the node's single maintenance task: refresh stale buckets, expire
    records and provider records, republish ours. Each period is jittered."""
    jitter: float = 0.1
    """Relative jitter of the maintenance period (0.1: +/-10 %), so that nodes started
    together do not refresh in lockstep."""
    seed: int | None = None
    """Seeds the node's random source (jitter, refresh keys) together with its PeerId,
    so one config gives every simulated node a different but reproducible stream.
    None: seeded from os.urandom."""

    ping_after: float = DEFAULT_PING_AFTER
    """When a peer arrives for a full bucket, the bucket's least-recently-seen peer is
    pinged if we have not heard from it for this long: it stays if it answers and
    the newcomer takes its place if not. Heard from more recently, it stays unpinged
    and the newcomer is dropped. 15 minutes by default, BEP 5's window for a "good"
    node: shorter windows mostly ping live peers (see :mod:`.routing`)."""
    max_failures: int = 2
    """Consecutive failed RPCs after which a peer leaves the routing table."""
    max_pending_pings: int = 16
    """Liveness pings of old bucket entries running at once; newcomers are dropped beyond."""

    value_quorum: int = 3
    """``get_value`` stops once this many peers (our own store counts as one) returned a
    valid value, then picks the best with the validator and corrects peers that held
    a worse one. Fewer found: the lookup runs to the end and the best found wins."""
    validator: Validator = field(default_factory=default_validator)
    """Record validation (see :mod:`peerwire.protocols.kad.records`). Default: ``/pk/``
    records must hold the key's public key; any other key is accepted."""

    record_ttl: float = 36 * HOUR
    """Seconds a record put on us lives (go-libp2p MaxRecordAge: 36 h)."""
    republish_interval: float = 12 * HOUR
    """How often we republish records we put (0: never). Below ``record_ttl`` so
    that one missed republish does not lose the record."""
    provider_ttl: float = 48 * HOUR
    """Seconds a provider record put on us lives (go and js: 48 h)."""
    reprovide_interval: float = 22 * HOUR
    """How often we re-announce keys we provide (go: 22 h; 0: never)."""

    max_record_size: int = 64 * 1024
    """Largest record (key plus value, bytes) we store or publish."""
    max_records: int = 4096
    """Records stored for others; PUT_VALUE for a new key beyond it is refused."""
    max_provider_keys: int = 4096
    """Keys we hold provider records for (and keys we provide ourselves)."""
    max_providers_per_key: int = 64
    """Providers kept per key; newcomers are refused until some expire."""
    max_message_size: int = 1 << 20
    """Largest kad RPC message accepted, 1 MiB: a record of ``max_record_size`` plus
    ``k`` peers with their addresses fits with room to spare. go-libp2p allows 4 MiB;
    nothing in the protocol needs that much, and every byte is buffered before it
    is parsed."""
    max_peers_per_message: int = 64
    """Peers read from one message's closer/provider lists; the rest are ignored."""
    max_inbound_rpcs_per_peer: int = 16
    """Streams one peer may have open to our kad handler at once; more are reset."""
    max_requests_per_stream: int = 64
    """Requests answered on one inbound stream (the spec allows several) before it is closed."""

    def __post_init__(self) -> None:
        if self.mode not in ("server", "client"):
            raise UsageError(f"KadConfig.mode must be 'server' or 'client', not {self.mode!r}")
        if not self.protocol.startswith("/") or "\n" in self.protocol:
            raise UsageError(f"KadConfig.protocol is not a protocol id: {self.protocol!r}")
        for name in (
            "k",
            "alpha",
            "max_failures",
            "max_pending_pings",
            "value_quorum",
            "max_records",
            "max_provider_keys",
            "max_providers_per_key",
            "max_peers_per_message",
            "max_inbound_rpcs_per_peer",
            "max_requests_per_stream",
        ):
            if getattr(self, name) < 1:
                raise UsageError(f"KadConfig.{name} must be >= 1")
        if not 1 <= self.bucket_count <= 256:
            raise UsageError("KadConfig.bucket_count must be in 1..256")
        for name in ("request_timeout", "lookup_timeout", "inbound_timeout"):
            if getattr(self, name) <= 0:
                raise UsageError(f"KadConfig.{name} must be > 0")
        if self.maintenance_interval <= 0:
            raise UsageError("KadConfig.maintenance_interval must be > 0")
        for name in (
            "refresh_interval",
            "ping_after",
            "republish_interval",
            "reprovide_interval",
        ):
            if getattr(self, name) < 0:
                raise UsageError(f"KadConfig.{name} must be >= 0")
        if self.record_ttl <= 0 or self.provider_ttl <= 0:
            raise UsageError("KadConfig.record_ttl and provider_ttl must be > 0")
        if not 0 <= self.jitter < 1:
            raise UsageError("KadConfig.jitter must be in [0, 1)")
        if self.max_record_size < 64:
            raise UsageError("KadConfig.max_record_size must be >= 64")
        if self.max_message_size < self.max_record_size + 1024:
            raise UsageError("KadConfig.max_message_size must exceed max_record_size by 1 KiB")
        if not isinstance(self.validator, Validator):
            raise UsageError("KadConfig.validator needs validate(key, value), select(key, values)")
