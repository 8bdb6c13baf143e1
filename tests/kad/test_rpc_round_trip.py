"""A kad request costs one round trip and two packets on an open connection.

The request goes out lazily (multistream proposal, request and half-close in
one write) and the answer comes back with the listener's echo and FIN, the
stream's ACK riding along. Counted on the simulator's network, on virtual
time: a behaviour, not a timing.
"""

from __future__ import annotations

import asyncio

import pytest

from peerwire.protocols.kad.messages import KadMessage, MessageType
from peerwire.sim import LinkSpec, Simulation, run_virtual


def _packets(sim: Simulation) -> int:
    return sum(stats.packets_sent for stats in sim.network.stats.values())


@pytest.mark.parametrize("fast_crypto", [True, False])
def test_find_node_is_one_round_trip_of_two_packets(fast_crypto: bool) -> None:
    async def main() -> tuple[int, float, int]:
        sim = Simulation(
            seed=3, overlay="kademlia", fast_crypto=fast_crypto, link=LinkSpec(latency=0.1)
        )
        try:
            a, b = sim.add_node(), sim.add_node()
            await sim.start(a)
            await sim.start(b)
            await a.node.connect(b.addr)
            await asyncio.sleep(5)  # identify and everything else settle
            loop = asyncio.get_running_loop()
            before, start = _packets(sim), loop.time()
            request = KadMessage(MessageType.FIND_NODE, key=b.peer_id.to_bytes())
            answer = await a.node.dht._rpc(b.peer_id, request)
            took = loop.time() - start
            await asyncio.sleep(5)  # anything the exchange still sends afterwards counts too
            return _packets(sim) - before, took, len(answer.closer)
        finally:
            await sim.stop_all()

    packets, took, closer = run_virtual(main(), seed=3)
    assert packets == 2
    assert took == pytest.approx(0.2, abs=1e-6)
    assert closer >= 1  # b names itself: the key is its own id
