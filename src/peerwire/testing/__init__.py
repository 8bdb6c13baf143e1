"""peerwire's public test kit: in-memory nodes, connected pairs, conformance suites,
a virtual clock and fake networks.

* :func:`make_node`, :func:`running_nodes`, :func:`node_pair`: nodes on the
  memory transport (or TCP);
* :class:`VirtualClockLoop`, :func:`run_virtual`: an event loop on virtual
  time (sleeps and timeouts cost no real time; same inputs, same run);
* :class:`SimNetwork`, :class:`LinkSpec`: a memory network with latency,
  bandwidth, loss, partitions and dead hosts (see :mod:`peerwire.sim`);
* :class:`FakeNet`: seeded datagram network that drops, duplicates, delays
  and reorders, for datagram protocols.
"""

from ..sim.clock import SimulationStalled, VirtualClockLoop, current_rng, run_virtual
from ..sim.network import LinkSpec, SimNetwork
from .fakenet import Datagram, FakeEndpoint, FakeNet, FakeNetStats
from .nodes import make_node, node_pair, running_nodes

__all__ = [
    "Datagram",
    "FakeEndpoint",
    "FakeNet",
    "FakeNetStats",
    "LinkSpec",
    "SimNetwork",
    "SimulationStalled",
    "VirtualClockLoop",
    "current_rng",
    "make_node",
    "node_pair",
    "run_virtual",
    "running_nodes",
]
