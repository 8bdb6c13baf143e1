"""Deterministic network simulator: real nodes, virtual time, a modelled network.

* :mod:`.clock`: :class:`VirtualClockLoop` / :func:`run_virtual`, an asyncio
  loop whose time jumps to the next timer (nothing sleeps for real);
* :mod:`.network`: :class:`SimNetwork`, the memory transport with latency,
  jitter, bandwidth, loss (as TCP retransmission delay), partitions and dead hosts;
* :mod:`.faults`: nodes that drop or delay what they receive;
* :mod:`.world`: :class:`Simulation`, real ``Node`` objects with seeded
  identities, and churn (join, leave, crash, restart);
* :mod:`.scenarios`: the Spacemesh test matrix over any overlay
  (:mod:`.drivers`), with its metrics; :mod:`.report`: table, JSON, plot;
* :mod:`.shard` / :mod:`.sharded`: one scenario spread over several processes
  (``Scenario.shards``), kept exact by conservative time windows.

``peerwire sim`` is the command-line front end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .clock import SimulationStalled, VirtualClockLoop, current_rng, run_virtual
    from .drivers import (
        LookupOutcome,
        OverlayDriver,
        OverlayParams,
        get_driver,
        register_driver,
    )
    from .faults import MessageFaults, NodeCounters, install_message_faults
    from .network import HostStats, LinkSpec, SimNetwork, SimTransport
    from .scenarios import (
        Scenario,
        ScenarioResult,
        matrix,
        run_scenario,
        simulate,
        simulate_all,
    )
    from .shard import ShardFailed
    from .world import ChurnEvent, ChurnSpec, SimNode, Simulation

# Loaded on first use: ``peerwire`` registers the ``sim`` command (``.cli``) at
# start-up, which must not import the whole stack.
_LAZY = {
    "clock": ("SimulationStalled", "VirtualClockLoop", "current_rng", "run_virtual"),
    "drivers": ("LookupOutcome", "OverlayDriver", "OverlayParams", "get_driver", "register_driver"),
    "faults": ("MessageFaults", "NodeCounters", "install_message_faults"),
    "network": ("HostStats", "LinkSpec", "SimNetwork", "SimTransport"),
    "shard": ("ShardFailed",),
    "scenarios": (
        "Scenario",
        "ScenarioResult",
        "matrix",
        "run_scenario",
        "simulate",
        "simulate_all",
    ),
    "world": ("ChurnEvent", "ChurnSpec", "SimNode", "Simulation"),
}
__getattr__ = lazy_attributes(
    __name__, {name: module for module, names in _LAZY.items() for name in names}
)

__all__ = [
    "ChurnEvent",
    "ChurnSpec",
    "HostStats",
    "LinkSpec",
    "LookupOutcome",
    "MessageFaults",
    "NodeCounters",
    "OverlayDriver",
    "OverlayParams",
    "Scenario",
    "ScenarioResult",
    "ShardFailed",
    "SimNetwork",
    "SimNode",
    "SimTransport",
    "Simulation",
    "SimulationStalled",
    "VirtualClockLoop",
    "current_rng",
    "get_driver",
    "install_message_faults",
    "matrix",
    "register_driver",
    "run_scenario",
    "run_virtual",
    "simulate",
    "simulate_all",
]
