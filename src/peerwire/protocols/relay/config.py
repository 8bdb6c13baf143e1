"""``RelayConfig``: the limits of ``/peerwire/relay/1.0.0``, with their defaults.

Reached as ``peerwire.Config(relay=RelayConfig(...))``. Times are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import UsageError


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayConfig:
    """Routed-message settings. All fields keyword-only."""

    ttl: int = 32
    """Most links a routed message may travel (1..255). Chord and Kademlia need
    about log2(N) (20 for a million nodes); the rest is slack for retries around
    failed nodes. A message that runs out is dropped and reported (an ERROR goes
    back to a waiting ``route_request``)."""
    max_attempts: int = 4
    """Next hops one node tries for one message: the overlay's best candidate, then
    up to ``max_attempts - 1`` alternatives when sending to a candidate fails."""
    sign: bool = True
    """Sign routed messages with the source's key, and make the destination refuse
    unsigned or badly signed ones, so ``Message.sender`` of a routed message can be
    trusted. Costs ~30 us (sign) plus ~100 us (verify) per message; turn off only
    in a network whose every node is trusted."""
    max_age: float = 300.0
    """The destination refuses messages whose timestamp is further than this from
    its clock (a replayed old message); 0 disables the check."""
    seen_size: int = 65536
    """(source, id) pairs the destination remembers to refuse replays within the
    ``max_age`` window (entries live ``2 * max_age`` seconds, or 600 s)."""
    queue_size: int = 1024
    """Frames a node holds for one neighbour it cannot send to at once (dialling, or
    its stream is full). Beyond, forwarding to it is refused and the next candidate
    is tried; with none left the message is dropped and reported."""

    def __post_init__(self) -> None:
        if not 1 <= self.ttl <= 255:
            raise UsageError("RelayConfig.ttl must be in 1..255")
        for name in ("max_attempts", "seen_size", "queue_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"RelayConfig.{name} must be >= 1")
        if self.max_age < 0:
            raise UsageError("RelayConfig.max_age must be >= 0")
