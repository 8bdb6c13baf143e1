"""Deterministic network simulator: real nodes, virtual time, a modelled network."""

from .clock import SimulationStalled, VirtualClockLoop, current_rng, run_virtual
from .faults import MessageFaults, NodeCounters, install_message_faults
from .network import HostStats, LinkSpec, SimNetwork, SimTransport
from .world import ChurnEvent, ChurnSpec, SimNode, Simulation

__all__ = [
    "ChurnEvent",
    "ChurnSpec",
    "HostStats",
    "LinkSpec",
    "MessageFaults",
    "NodeCounters",
    "SimNetwork",
    "SimNode",
    "SimTransport",
    "Simulation",
    "SimulationStalled",
    "VirtualClockLoop",
    "current_rng",
    "install_message_faults",
    "run_virtual",
]
