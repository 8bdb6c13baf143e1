"""Overlay drivers: what the scenario runner needs to know about one topology.

The runner (:mod:`peerwire.sim.scenarios`) is overlay-agnostic: it asks a
:class:`OverlayDriver` how to configure nodes, whether a node has joined,
whether one node already knows another, and how to run one lookup. Register a
new overlay (Chord) with :func:`register_driver`; the matrix, metrics, report
and CLI then work for it unchanged.

The relay and broadcast flows (:mod:`.overlay_flows`) also ask the driver
what the overlay supports (:attr:`OverlayDriver.supports_relay`,
:attr:`OverlayDriver.broadcast_modes`) and which node *should* receive a
routed key (:meth:`OverlayDriver.owner`), so that a delivery is checked
against the overlay's own ownership rule, computed from the live nodes.

Built in:

* ``"mesh"``: no overlay. Each joining node connects to the boot nodes and to
  ``degree`` random live nodes (as if a tracker handed out addresses). It has
  no lookup; its "send to an unknown node" flow is handed the target's address
  by the simulator, so it measures dial + deliver only. No relay (nothing to
  route with); push and pull broadcasts flood the connections.
* ``"kademlia"``: ``Node(overlay="kademlia")``; a lookup is ``node.dht.find_peer``,
  with rounds and messages from the DHT's own lookup reports. Relay delivers
  at the XOR-closest node; push and pull broadcasts flood the routing table.
* ``"chord"``: :class:`peerwire.overlay.chord.simdriver.ChordDriver`, imported
  when first asked for: relay to the key's successor, and all three broadcast
  modes (tree needs Chord's fingers).
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import functools
import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import PeerwireError, UsageError

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from ..protocols.kad.service import KadService, LookupReport
    from .world import SimNode, Simulation

__all__ = [
    "DRIVERS",
    "KademliaDriver",
    "LookupOutcome",
    "MeshDriver",
    "OverlayDriver",
    "OverlayParams",
    "get_driver",
    "register_driver",
    "ring_position",
    "successor_owner",
    "xor_owner",
]


def ring_position(node: SimNode) -> int:
    """``node``'s 256-bit overlay position (sha256 of its PeerId) as an integer."""
    return _position(node.peer_id.to_bytes())


@functools.lru_cache(maxsize=1 << 16)
def _position(peer_id: bytes) -> int:
    return int.from_bytes(hashlib.sha256(peer_id).digest(), "big")


def successor_owner(nodes: Sequence[SimNode], key: bytes) -> SimNode | None:
    """Chord's owner of ``key`` among ``nodes``: the first node at or after it on the
    ring (the key lies in ``(predecessor, owner]``), wrapping past the top."""
    if not nodes:
        return None
    target = int.from_bytes(key, "big")
    ranked = sorted(nodes, key=ring_position)
    for node in ranked:
        if ring_position(node) >= target:
            return node
    return ranked[0]


def xor_owner(nodes: Sequence[SimNode], key: bytes) -> SimNode | None:
    """Kademlia's owner of ``key`` among ``nodes``: the XOR-closest node."""
    if not nodes:
        return None
    target = int.from_bytes(key, "big")
    return min(nodes, key=lambda n: ring_position(n) ^ target)


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlayParams:
    """Topology knobs passed through to the overlay's own config (None: its default)."""

    bucket_size: int | None = None
    """Kademlia: k (peers per bucket). Other overlays map it as they see fit."""
    bucket_count: int | None = None
    """Kademlia: most buckets in the routing table."""
    seed: int = 0
    """Seed for the overlay's own random source (so runs repeat)."""


@dataclass(frozen=True, slots=True)
class LookupOutcome:
    """One lookup as the runner records it."""

    found: bool
    rounds: int | None = None
    """Longest request chain (FIND_NODE rounds); None if the overlay does not say."""
    messages: int | None = None
    """Requests the lookup sent; None if the overlay does not say."""


class OverlayDriver(abc.ABC):
    """How the scenario runner drives one kind of overlay."""

    name: str
    overlay: str | None
    """What ``Node(overlay=...)`` gets."""
    supports_lookup: bool = True
    supports_relay: bool = False
    """Whether ``node.route`` works over this overlay (the relay flow runs)."""
    broadcast_modes: frozenset[str] = frozenset({"push", "pull"})
    """``node.broadcast`` modes this overlay supports (tree needs Chord's fingers)."""

    def owner(self, nodes: Sequence[SimNode], key: bytes) -> SimNode | None:
        """Which of ``nodes`` (the live members) is responsible for the 32-byte ``key``:
        where a routed message must arrive. Only if :attr:`supports_relay`."""
        raise UsageError(f"the {self.name} overlay has no relay")

    def configure(self, config: Config, params: OverlayParams) -> Config:
        """The node config with ``params`` applied (default: unchanged)."""
        return config

    async def join(self, sim: Simulation, node: SimNode, rng: random.Random) -> bool:
        """Called right after ``node`` started (it has dialled its boot nodes).
        Return whether it joined the overlay."""
        return bool(node.node.peers())

    @abc.abstractmethod
    def knows(self, node: SimNode, other: SimNode) -> bool:
        """True if ``node`` has ``other`` in its routing state or a connection to it."""

    @abc.abstractmethod
    def routing_size(self, node: SimNode) -> int:
        """Peers in ``node``'s routing state."""

    async def lookup(self, node: SimNode, target: SimNode) -> LookupOutcome:
        """Find ``target`` from ``node`` (only if :attr:`supports_lookup`)."""
        raise UsageError(f"the {self.name} overlay has no lookup")

    def prepare_send(self, node: SimNode, target: SimNode) -> None:  # noqa: B027 (optional hook)
        """Before ``node`` sends to a ``target`` it does not know (mesh: hand it the address)."""

    def requests_received(self, node: SimNode) -> int | None:
        """Overlay RPCs ``node`` answered, if the overlay counts them."""
        return None


class MeshDriver(OverlayDriver):
    """Plain connected nodes (no overlay): see the module docstring."""

    name = "mesh"
    overlay = None
    supports_lookup = False

    def __init__(self, degree: int = 4) -> None:
        self.degree = degree

    async def join(self, sim: Simulation, node: SimNode, rng: random.Random) -> bool:
        others = [n for n in sim.live() if n is not node and n.started_at is not None]
        picks = rng.sample(others, min(self.degree, len(others)))
        results = await asyncio.gather(
            *(node.node.connect(peer.addr) for peer in picks), return_exceptions=True
        )
        return bool(node.node.peers()) or any(not isinstance(r, BaseException) for r in results)

    def knows(self, node: SimNode, other: SimNode) -> bool:
        return node.node.connection(other.peer_id) is not None

    def routing_size(self, node: SimNode) -> int:
        return len(node.node.peers())

    def prepare_send(self, node: SimNode, target: SimNode) -> None:
        node.node.peerstore.add_addrs(target.peer_id, [target.addr.without_peer_id()])


def _dht(node: SimNode) -> KadService:
    return node.node.dht


class KademliaDriver(OverlayDriver):
    """``Node(overlay="kademlia")``: bucket_size -> k, bucket_count -> bucket_count."""

    name = "kademlia"
    overlay = "kademlia"
    supports_relay = True

    def owner(self, nodes: Sequence[SimNode], key: bytes) -> SimNode | None:
        return xor_owner(nodes, key)

    def __init__(self) -> None:
        self._reports: dict[tuple[int, bytes], LookupReport] = {}

    def configure(self, config: Config, params: OverlayParams) -> Config:
        kad = config.kad
        changes: dict[str, Any] = {"seed": params.seed}
        if params.bucket_size is not None:
            changes["k"] = params.bucket_size
        if params.bucket_count is not None:
            changes["bucket_count"] = params.bucket_count
        return dataclasses.replace(config, kad=dataclasses.replace(kad, **changes))

    async def join(self, sim: Simulation, node: SimNode, rng: random.Random) -> bool:
        # Node.start already ran the DHT bootstrap through the boot nodes.
        return len(_dht(node).table) > 0

    def knows(self, node: SimNode, other: SimNode) -> bool:
        return other.peer_id in _dht(node).table or node.node.connection(other.peer_id) is not None

    def routing_size(self, node: SimNode) -> int:
        return len(_dht(node).table)

    async def lookup(self, node: SimNode, target: SimNode) -> LookupOutcome:
        dht = _dht(node)
        key = target.peer_id.to_bytes()
        slot = (node.index, key)

        def record(report: LookupReport) -> None:
            if report.kind == "find_peer" and report.key == key:
                self._reports[slot] = report

        dht.lookup_listeners.append(record)
        try:
            info = await dht.find_peer(target.peer_id)
            found = bool(info.addrs)
        except PeerwireError:
            found = False
        finally:
            dht.lookup_listeners.remove(record)
        report = self._reports.pop(slot, None)
        if report is None:
            return LookupOutcome(found, 0, 0)  # answered locally, no lookup ran
        return LookupOutcome(found, report.stats.rounds, report.stats.messages)

    def requests_received(self, node: SimNode) -> int | None:
        return _dht(node).metrics.requests_received


def _lazy(module: str, name: str) -> Callable[[], OverlayDriver]:
    """A factory that imports the driver's module only when a scenario asks for it."""

    def factory() -> OverlayDriver:
        driver: OverlayDriver = getattr(importlib.import_module(module), name)()
        return driver

    return factory


DRIVERS: dict[str, Callable[[], OverlayDriver]] = {
    "mesh": MeshDriver,
    "kademlia": KademliaDriver,
    "chord": _lazy("peerwire.overlay.chord.simdriver", "ChordDriver"),
}
"""Overlay name -> driver factory (see :func:`register_driver`)."""


def register_driver(name: str, factory: Callable[[], OverlayDriver]) -> None:
    """Make ``name`` usable as a scenario's overlay (e.g. ``register_driver("chord", ...)``)."""
    DRIVERS[name] = factory


def get_driver(name: str) -> OverlayDriver:
    try:
        return DRIVERS[name]()
    except KeyError:
        raise UsageError(f"unknown overlay {name!r}; known: {', '.join(sorted(DRIVERS))}") from None
