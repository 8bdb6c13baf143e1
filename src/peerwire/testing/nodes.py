"""Nodes for tests: in-memory networks and connected pairs, over memory or TCP.

Each helper starts what it creates and stops it on exit, so a test cannot leak
listeners or connections into the next one.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Literal

from ..config import Config
from ..identity.identity import Identity
from ..node import Node
from ..transport.memory import MemoryNetwork, MemoryTransport
from ..transport.tcp import TcpTransport

TransportKind = Literal["memory", "tcp"]
_names = itertools.count()


def make_node(
    transport: TransportKind = "memory",
    *,
    network: MemoryNetwork | None = None,
    config: Config | None = None,
    identity: Identity | None = None,
) -> Node:
    """A not-yet-started node listening on a fresh memory name or 127.0.0.1:0."""
    if transport == "memory":
        net = network or MemoryNetwork()
        return Node(
            identity,
            [f"/memory/test-{next(_names)}"],
            config=config,
            transports=[MemoryTransport(net)],
        )
    return Node(identity, ["/ip4/127.0.0.1/tcp/0"], config=config, transports=[TcpTransport()])


@asynccontextmanager
async def running_nodes(
    count: int,
    transport: TransportKind = "memory",
    *,
    configs: Sequence[Config | None] | None = None,
    network: MemoryNetwork | None = None,
) -> AsyncIterator[list[Node]]:
    """``count`` started (unconnected) nodes sharing one memory network."""
    net = network or MemoryNetwork()
    cfgs = list(configs) if configs is not None else [None] * count
    async with AsyncExitStack() as stack:
        nodes = []
        for cfg in cfgs:
            node = make_node(transport, network=net, config=cfg)
            await stack.enter_async_context(node)
            nodes.append(node)
        yield nodes


@asynccontextmanager
async def node_pair(
    transport: TransportKind = "memory",
    *,
    config_a: Config | None = None,
    config_b: Config | None = None,
    connect: bool = True,
) -> AsyncIterator[tuple[Node, Node]]:
    """Two started nodes; ``a`` has dialled ``b`` unless ``connect=False``."""
    async with running_nodes(2, transport, configs=[config_a, config_b]) as (a, b):
        if connect:
            await a.connect(b.addrs[0])
        yield a, b
