"""Middleware in action: a hub that turns away "unlucky" peers and counts messages.

Run it with ``python examples/middleware.py``. Everything happens in one
process over the in-memory transport:

* the hub refuses any peer whose PeerId bytes end in an odd byte, with a
  ``PEER_CONNECTED`` hook (the connection is closed before identify runs);
* the hub counts the messages it receives per protocol with a
  ``MESSAGE_RECEIVED`` hook (which must return the message to let it through);
* each client learns whether it got in from its own ``PEER_READY`` (identify
  with the hub completed) or ``PEER_DISCONNECTED`` hook.

Identities come from fixed seeds, so every run prints the same verdicts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import peerwire as pw
from peerwire.transport.memory import MemoryTransport

CLIENTS = 6
CHAT = "/chat/1.0.0"
ECHO = "/echo-msg/1.0.0"


def is_unlucky(peer: pw.PeerId) -> bool:
    return peer.to_bytes()[-1] % 2 == 1


def memory_node(seed: int, name: str) -> pw.Node:
    return pw.Node(
        pw.Identity.from_seed(bytes([seed]) * 32),
        [f"/memory/example-{name}"],
        transports=[MemoryTransport()],
    )


async def run_client(hub: pw.Node, client: pw.Node, index: int) -> str:
    """Connect ``client`` to the hub; if admitted, send it some messages."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[str] = loop.create_future()

    def settle(verdict: str) -> None:
        if not outcome.done():
            outcome.set_result(verdict)

    client.use(pw.Hook.PEER_READY, lambda conn, info: settle("admitted"))
    client.use(pw.Hook.PEER_DISCONNECTED, lambda conn: settle("refused"))
    try:
        await client.connect(hub.addrs[0])
    except pw.PeerwireError:
        settle("refused")
    verdict = await asyncio.wait_for(outcome, timeout=5.0)
    if verdict == "admitted":
        for n in range(index % 3 + 1):
            await client.send(hub.peer_id, CHAT, f"hello #{n} from client {index}".encode())
        reply = await client.request(hub.peer_id, ECHO, b"ping", timeout=5.0)
        assert reply == b"ping"
    return verdict


async def main() -> int:
    hub = memory_node(200, "hub")
    clients = [memory_node(i + 1, f"client-{i}") for i in range(CLIENTS)]

    refused: list[pw.PeerId] = []

    def reject_unlucky(conn: Any) -> bool:
        if is_unlucky(conn.remote_peer):
            refused.append(conn.remote_peer)
            return False  # close the connection
        return True

    per_protocol: Counter[str] = Counter()

    def count(msg: pw.Message) -> pw.Message:
        per_protocol[msg.protocol] += 1
        return msg  # returning None would drop the message

    hub.use(pw.Hook.PEER_CONNECTED, reject_unlucky, priority=10)
    hub.use(pw.Hook.MESSAGE_RECEIVED, count)

    chats: list[bytes] = []
    chat_arrived = asyncio.Event()

    @hub.on(CHAT)
    def chat(msg: pw.Message) -> None:
        chats.append(msg.data)
        chat_arrived.set()

    @hub.on(ECHO)
    def echo(msg: pw.Message) -> bytes:
        return msg.data

    async with hub:
        for client in clients:
            await client.start()
        try:
            verdicts = await asyncio.gather(
                *(run_client(hub, client, i) for i, client in enumerate(clients))
            )
            async with asyncio.timeout(5.0):  # fire-and-forget sends: wait until all arrived
                expected = sum(
                    i % 3 + 1 for i, verdict in enumerate(verdicts) if verdict == "admitted"
                )
                while len(chats) < expected:
                    chat_arrived.clear()
                    await chat_arrived.wait()
        finally:
            for client in clients:
                await client.stop()

    print(f"hub {hub.peer_id}")
    for client, verdict in zip(clients, verdicts, strict=True):
        last = client.peer_id.to_bytes()[-1]
        print(f"  client {client.peer_id}  last byte 0x{last:02x}  -> {verdict}")
    print(f"refused by PEER_CONNECTED: {len(refused)}")
    print("messages received per protocol (MESSAGE_RECEIVED):")
    for protocol, n in sorted(per_protocol.items()):
        print(f"  {protocol:20} {n}")
    consistent = all(
        (verdict == "refused") == is_unlucky(client.peer_id)
        for client, verdict in zip(clients, verdicts, strict=True)
    )
    return 0 if consistent else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(asyncio.run(main()))
