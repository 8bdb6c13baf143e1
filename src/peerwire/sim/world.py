"""A simulated world: real :class:`~peerwire.Node` objects on one :class:`SimNetwork`.

:class:`Simulation` builds nodes the way users build them (same ``Node``
class, same config, same protocols), gives each a deterministic identity and
host name, and implements the life-cycle events of churn: start (join),
graceful leave, crash (silent, or with resets) and restart.

Determinism: every random choice comes from a stream derived from the one
``seed`` (:meth:`Simulation.rng`): ``rng("identities")`` for keys,
``rng("network")`` for jitter and loss, ``rng("faults")`` for message faults,
and whatever streams a scenario asks for. Deriving streams by name (rather
than drawing everything from one generator) keeps, say, the set of lookup
targets the same when only the link model changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..config import PLAINTEXT, Config
from ..errors import PeerwireError, UsageError
from ..identity.identity import Identity
from ..identity.multiaddr import Multiaddr
from ..identity.peer_id import PeerId
from ..node import Node
from .faults import MessageFaults, NodeCounters, install_message_faults
from .network import DEFAULT_CONNECT_TIMEOUT, DEFAULT_USER_TIMEOUT, LinkSpec, SimNetwork

__all__ = ["ChurnEvent", "ChurnSpec", "CrashMode", "NodeState", "SimNode", "Simulation"]

log = logging.getLogger("peerwire.sim")

NodeState = Literal["created", "up", "left", "crashed"]
CrashMode = Literal["silent", "reset"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChurnSpec:
    """Random churn: one event every ``interval`` seconds, chosen by weight."""

    interval: float = 1.0
    join: float = 1.0
    """Weight of "a new node joins (bootstrapping from ``bootstrap`` random live nodes)"."""
    leave: float = 1.0
    """Weight of "a random live node leaves gracefully"."""
    crash: float = 1.0
    """Weight of "a random live node crashes" (``crash_mode``)."""
    crash_mode: CrashMode = "silent"
    bootstrap: int = 3
    min_live: int = 2
    """Never let leaves and crashes take the network below this many live nodes."""

    def __post_init__(self) -> None:
        if self.interval <= 0 or min(self.join, self.leave, self.crash) < 0:
            raise UsageError("churn needs interval > 0 and weights >= 0")
        if self.join + self.leave + self.crash <= 0:
            raise UsageError("churn needs at least one positive weight")


@dataclass(frozen=True, slots=True)
class ChurnEvent:
    time: float
    kind: Literal["join", "leave", "crash"]
    host: str


@dataclass(eq=False, slots=True)
class SimNode:
    """One simulated node: its host name, identity, ``Node`` and counters."""

    index: int
    host: str
    identity: Identity
    node: Node
    counters: NodeCounters
    faults: MessageFaults | None = None
    state: NodeState = "created"
    started_at: float | None = None
    stopped_at: float | None = None

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    @property
    def addr(self) -> Multiaddr:
        """Where to dial it: ``/memory/<host>/p2p/<peer id>``."""
        return Multiaddr(f"/memory/{self.host}/p2p/{self.identity.peer_id}")

    @property
    def alive(self) -> bool:
        return self.state == "up"

    def __repr__(self) -> str:
        return f"<SimNode {self.host} {self.state}>"


class Simulation:
    """Nodes on a :class:`SimNetwork`; run it on a :class:`~peerwire.sim.VirtualClockLoop`.

    ``fast_crypto=True`` replaces Noise by plaintext security for every node
    (simulator only: handshakes then cost no X25519/Ed25519 work); reports
    must say which was used, see :attr:`crypto`. ``overlay`` and ``config``
    are passed to every ``Node``.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        link: LinkSpec | None = None,
        fast_crypto: bool = False,
        overlay: str | None = None,
        config: Config | None = None,
        user_timeout: float = DEFAULT_USER_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        network: Callable[..., SimNetwork] = SimNetwork,
    ) -> None:
        self.seed = seed
        self.fast_crypto = fast_crypto
        self.overlay = overlay
        base = config or Config()
        if fast_crypto:
            base = dataclasses.replace(base, security=(PLAINTEXT,), allow_plaintext=True)
        self.config = base
        self.network = network(
            rng=self.rng("network"),
            link=link,
            user_timeout=user_timeout,
            connect_timeout=connect_timeout,
        )
        self.nodes: list[SimNode] = []
        self._by_peer: dict[PeerId, SimNode] = {}
        self._identities = self.rng("identities")
        self._fault_rng = self.rng("faults")

    def rng(self, stream: str) -> random.Random:
        """A fresh generator for the named stream, derived from the seed (see module doc)."""
        return random.Random(f"peerwire-sim/{self.seed}/{stream}")

    @property
    def crypto(self) -> str:
        """``"plaintext"`` with fast_crypto, else ``"noise"``: say it in every report."""
        return "plaintext" if PLAINTEXT in self.config.security else "noise"

    # ----------------------------------------------------------- nodes
    def add_node(
        self,
        *,
        bootstrap: Iterable[SimNode] = (),
        faults: MessageFaults | None = None,
        config: Config | None = None,
        overlay: str | Literal["default"] | None = "default",
    ) -> SimNode:
        """Create (not start) a node with the next deterministic identity and host name."""
        index = len(self.nodes)
        host = f"n{index}"
        identity = Identity.from_seed(self._identities.randbytes(32))
        node = Node(
            identity,
            [f"/memory/{host}"],
            overlay=self.overlay if overlay == "default" else overlay,
            bootstrap=[peer.addr for peer in bootstrap],
            config=config or self.config,
            transports=[self.network.transport(host)],
        )
        counters = install_message_faults(node, faults, rng=self._fault_rng)
        sim_node = SimNode(index, host, identity, node, counters, faults)
        self.nodes.append(sim_node)
        self._by_peer[identity.peer_id] = sim_node
        return sim_node

    def node_for(self, peer: PeerId) -> SimNode | None:
        return self._by_peer.get(peer)

    def live(self) -> list[SimNode]:
        """Nodes that are up, in creation order."""
        return [n for n in self.nodes if n.state == "up"]

    # ------------------------------------------------------- life cycle
    async def start(self, sim_node: SimNode) -> None:
        """Start the node (listen, dial its bootstrap peers, join its overlay)."""
        if sim_node.state == "up":
            raise UsageError(f"{sim_node.host} is already up")
        if self.network.is_down(sim_node.host):
            self.network.set_down(sim_node.host, False)
        sim_node.started_at = asyncio.get_running_loop().time()
        sim_node.state = "up"
        try:
            await sim_node.node.start()
        except BaseException:
            sim_node.state = "left"
            raise

    def mirror_start(self, sim_node: SimNode) -> None:
        """Record that another shard started ``sim_node`` now (its ``Node`` is not ours to run)."""
        self.network.set_down(sim_node.host, False)
        sim_node.started_at = asyncio.get_running_loop().time()
        sim_node.state = "up"

    def mirror_crash(self, sim_node: SimNode, *, mode: CrashMode = "silent") -> None:
        """Record that another shard crashed ``sim_node`` now: our ends of its connections
        see what :meth:`crash` makes them see (nothing, or resets)."""
        if sim_node.state != "up":
            return
        sim_node.state = "crashed"
        sim_node.stopped_at = asyncio.get_running_loop().time()
        if mode == "reset":
            self.network.reset_host(sim_node.host)
        else:
            self.network.set_down(sim_node.host)

    async def leave(self, sim_node: SimNode) -> None:
        """Graceful leave: close every connection with goodbyes, stop listening."""
        if sim_node.state != "up":
            return
        sim_node.state = "left"
        sim_node.stopped_at = asyncio.get_running_loop().time()
        await sim_node.node.stop()

    async def crash(self, sim_node: SimNode, *, mode: CrashMode = "silent") -> None:
        """Crash the node: no goodbye of any kind reaches its peers.

        ``"silent"``: the machine vanishes (a black hole: peers learn only by
        timeouts, dials to it time out). ``"reset"``: the process dies and
        the kernel resets its connections (peers see the resets, dials are
        refused).
        """
        if sim_node.state != "up":
            return
        sim_node.state = "crashed"
        sim_node.stopped_at = asyncio.get_running_loop().time()
        host = sim_node.host
        if mode == "reset":
            self.network.reset_host(host)
        elif mode != "silent":
            raise UsageError(f"crash mode must be 'silent' or 'reset', not {mode!r}")
        self.network.set_down(host)
        await sim_node.node.stop()  # its goodbyes vanish into the black hole
        if mode == "reset":
            self.network.set_down(host, False)

    async def restart(self, sim_node: SimNode, *, bootstrap: Sequence[SimNode] = ()) -> SimNode:
        """Bring a stopped node back with the same identity and host (a fresh ``Node``)."""
        if sim_node.state == "up":
            raise UsageError(f"{sim_node.host} is up")
        old = sim_node.node
        node = Node(
            sim_node.identity,
            [f"/memory/{sim_node.host}"],
            overlay=self.overlay,
            bootstrap=[peer.addr for peer in bootstrap],
            config=old.config,
            transports=old.host.transports,
        )
        sim_node.counters = install_message_faults(node, sim_node.faults, rng=self._fault_rng)
        sim_node.node = node
        sim_node.state = "created"
        await self.start(sim_node)
        return sim_node

    async def stop_all(self) -> None:
        """Stop every node still up (gracefully)."""
        live = self.live()
        for sim_node in live:
            sim_node.state = "left"
        await asyncio.gather(*(n.node.stop() for n in live), return_exceptions=True)

    async def churn(
        self, spec: ChurnSpec, *, duration: float, rng: random.Random | None = None
    ) -> list[ChurnEvent]:
        """Run random churn for ``duration`` seconds; returns what happened, in order.

        Draws from ``rng`` (default: the ``"churn"`` stream of the seed).
        """
        rng = rng or self.rng("churn")
        loop = asyncio.get_running_loop()
        start = loop.time()
        kinds: list[Literal["join", "leave", "crash"]] = ["join", "leave", "crash"]
        weights = [spec.join, spec.leave, spec.crash]
        events: list[ChurnEvent] = []
        for tick in range(1, int(duration / spec.interval + 1e-9) + 1):
            await asyncio.sleep(max(0.0, start + tick * spec.interval - loop.time()))
            live = self.live()
            kind = rng.choices(kinds, weights)[0]
            if kind != "join" and len(live) <= spec.min_live:
                kind = "join"
            if kind == "join":
                seeds = rng.sample(live, min(spec.bootstrap, len(live)))
                node = self.add_node(bootstrap=seeds)
                try:
                    await self.start(node)
                except PeerwireError as exc:
                    log.info("churn: %s failed to join: %s", node.host, exc)
            else:
                node = live[rng.randrange(len(live))]
                if kind == "leave":
                    await self.leave(node)
                else:
                    await self.crash(node, mode=spec.crash_mode)
            events.append(ChurnEvent(loop.time(), kind, node.host))
        return events
