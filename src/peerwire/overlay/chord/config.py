"""``ChordConfig``: every knob and limit of the Chord overlay, with its default.

Time values are seconds on the event loop's clock (``loop.time()``), so under
the simulator's virtual clock they are virtual seconds. The defaults follow
nnet's improved Chord (8 successors and predecessors at least, 3 successors
per finger, a 2 s jittered stabilisation round).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import UsageError

CHORD_PROTOCOL = "/peerwire/chord/1.0.0"
"""Protocol id of the ring-maintenance RPCs (one request and one answer per stream)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChordConfig:
    """Chord overlay settings. All fields keyword-only."""

    protocol: str = CHORD_PROTOCOL
    """Protocol id. A private ring (e.g. ``/myapp/chord/1.0.0``) keeps its nodes apart
    from every other peerwire ring."""

    finger_successors: int = 3
    """K: nodes kept per finger list (the first K successors of the finger's start).
    More gives relay and the tree broadcast alternatives when a finger fails, at
    the cost of connections."""
    min_successors: int = 8
    """Successors kept at least. The list grows to twice the number of non-empty
    finger intervals (about 2 log2 N), so that a ring survives that many
    consecutive failures and the last relay hop is always a direct one."""
    max_successors: int = 32
    """Successors kept at most, however large the ring."""
    min_predecessors: int = 8
    """Predecessors kept at least (grows like the successor list)."""
    max_predecessors: int = 32
    """Predecessors kept at most."""

    stabilize_interval: float = 2.0
    """Base period of the node's one maintenance task (check successor and
    predecessor, refresh fingers, probe neighbours, prune connections)."""
    jitter: float = 0.25
    """Relative jitter of each period (0.25: +/-25 %), so nodes started together do
    not stabilise in lockstep."""
    seed: int | None = None
    """Seeds the node's random source (jitter) together with its PeerId, so one
    config gives every simulated node a different but reproducible stream.
    None: drawn at start from the simulator's seeded generator when running on its
    virtual-clock loop (``loop.rng``), else from os.urandom."""

    rpc_timeout: float = 5.0
    """Seconds for one direct RPC (stream open, request, answer)."""
    lookup_timeout: float = 15.0
    """Seconds for one whole find-successors lookup, all its hops and retries."""
    lookup_attempts: int = 3
    """First hops a lookup tries (the best, then alternatives) before it fails; a
    node forwarding a lookup tries as many next hops."""
    max_lookup_hops: int = 32
    """Hops a find-successors request may be forwarded (its TTL)."""
    join_attempts: int = 3
    """Rounds of asking the bootstrap peers before ``join`` gives up."""
    finger_lookups_per_round: int = 1
    """Finger starts looked up per stabilisation round (a sweep over the distinct
    fingers beyond the successor list takes about log2(N / successors) lookups,
    so about 10 s in a ring of 1,000 with the defaults)."""
    self_check_every: int = 5
    """Every this many rounds (0: never), ask a random connected peer to look up our
    own successor. Simultaneous joins can leave a "loopy" ring (two interleaved
    cycles, each consistent on its own) that successor checks alone never merge
    (Liben-Nowell et al., 2002); an answer routed through the other cycle names a
    closer successor, and adopting it joins the cycles."""
    probe_interval: float = 60.0
    """Every neighbour is contacted at least this often (a ping RPC when nothing else
    reached it), which detects silent failures, measures RTTs for relay priority and
    keeps the connection under the host's ``idle_timeout``."""
    max_probes_per_round: int = 8
    """Ping RPCs sent per round at most."""
    max_failures: int = 2
    """Consecutive failed RPCs (timeouts) after which a neighbour is dropped. A
    connection that closes drops it at once."""
    dead_peer_ttl: float = 30.0
    """Seconds a peer that could not be dialled, or was dropped for failing RPCs, is not
    taken back into the lists (other nodes' answers may still name it)."""
    max_concurrent_dials: int = 8
    """Dials to newly learned nodes in flight at once (one maintenance round or one answer)."""
    prune_after: float = 10.0
    """A connection this overlay dialled is closed once the peer is in none of our lists,
    the connection carries no stream, and nothing arrived on it for this long.
    Connections the remote dialled, or that other protocols use, are never closed."""
    unknown_rtt: float = 0.1
    """RTT assumed (seconds) for a neighbour not measured yet, in the relay priority."""

    max_message_size: int = 64 * 1024
    """Largest chord request or answer accepted (an answer holds at most
    ``max_nodes_per_message`` nodes with their addresses)."""
    max_nodes_per_message: int = 64
    """Nodes read from one answer's lists, and sent in one; the rest are ignored."""
    max_inbound_rpcs: int = 256
    """Chord requests served at once; more are answered with a failure status."""

    def __post_init__(self) -> None:
        if not self.protocol.startswith("/") or "\n" in self.protocol:
            raise UsageError(f"ChordConfig.protocol is not a protocol id: {self.protocol!r}")
        for name in (
            "finger_successors",
            "min_successors",
            "min_predecessors",
            "lookup_attempts",
            "max_lookup_hops",
            "join_attempts",
            "finger_lookups_per_round",
            "max_probes_per_round",
            "max_failures",
            "max_concurrent_dials",
            "max_nodes_per_message",
            "max_inbound_rpcs",
        ):
            if getattr(self, name) < 1:
                raise UsageError(f"ChordConfig.{name} must be >= 1")
        if self.max_successors < self.min_successors:
            raise UsageError("ChordConfig.max_successors must be >= min_successors")
        if self.max_predecessors < self.min_predecessors:
            raise UsageError("ChordConfig.max_predecessors must be >= min_predecessors")
        if self.max_nodes_per_message < max(self.max_successors, self.max_predecessors):
            raise UsageError(
                "ChordConfig.max_nodes_per_message must hold a whole successor/predecessor list"
            )
        for name in ("stabilize_interval", "rpc_timeout", "lookup_timeout", "probe_interval"):
            if getattr(self, name) <= 0:
                raise UsageError(f"ChordConfig.{name} must be > 0")
        if self.self_check_every < 0:
            raise UsageError("ChordConfig.self_check_every must be >= 0")
        for name in ("dead_peer_ttl", "prune_after", "unknown_rtt"):
            if getattr(self, name) < 0:
                raise UsageError(f"ChordConfig.{name} must be >= 0")
        if not 0 <= self.jitter < 1:
            raise UsageError("ChordConfig.jitter must be in [0, 1)")
        if self.max_message_size < 4096:
            raise UsageError("ChordConfig.max_message_size must be >= 4096")

    def list_sizes(self) -> dict[str, int]:
        """The list-size settings, as keyword arguments of ``Ring`` and ``ideal_rings``."""
        return {
            "finger_successors": self.finger_successors,
            "min_successors": self.min_successors,
            "max_successors": self.max_successors,
            "min_predecessors": self.min_predecessors,
            "max_predecessors": self.max_predecessors,
        }
