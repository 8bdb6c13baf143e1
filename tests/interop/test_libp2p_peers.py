"""peerwire against real js-libp2p and py-libp2p peers, both directions, yamux and mplex.

Each case: connect (Noise XX, PeerId verified), libp2p ping, identify both ways
(agent version and protocols), and a 1 MiB /echo/1.0.0 round trip that has to go
through the muxer's flow control.
"""

from __future__ import annotations

import asyncio
import os

import pytest

import peerwire as pw
from peerwire.config import MPLEX, YAMUX

from .conftest import PEER_KINDS, interop_peer

pytestmark = pytest.mark.interop

MUXERS = {"yamux": YAMUX, "mplex": MPLEX}
ECHO_BYTES = 1 << 20
AGENT_PREFIX = {"js": "js-libp2p", "py": "py-libp2p"}


async def echo_handler(stream: pw.Stream) -> None:
    while data := await stream.read(65536):
        await stream.write(data)
    await stream.close_write()


def our_node(muxer: str) -> pw.Node:
    node = pw.Node(listen=["/ip4/127.0.0.1/tcp/0"], config=pw.Config(muxers=(MUXERS[muxer],)))
    node.set_stream_handler("/echo/1.0.0", echo_handler)
    return node


@pytest.mark.parametrize("muxer", list(MUXERS))
@pytest.mark.parametrize("kind", PEER_KINDS)
async def test_we_dial_them(kind: str, muxer: str) -> None:
    async with interop_peer(kind, "--listen", "/ip4/127.0.0.1/tcp/0", "--muxer", muxer) as peer:
        listening = await peer.wait_event("listening")
        async with our_node(muxer) as node:
            remote = await node.connect(listening["addrs"][0])
            assert str(remote) == listening["peer_id"]
            conn = node.connection(remote)
            assert conn is not None
            assert conn.security_protocol == "/noise"
            assert conn.muxer_protocol == MUXERS[muxer]

            assert await node.ping(remote) > 0

            info = await node.identify(remote)
            assert info.agent_version.startswith(AGENT_PREFIX[kind]), info.agent_version
            assert "/echo/1.0.0" in info.protocols
            assert "/ipfs/ping/1.0.0" in info.protocols

            payload = os.urandom(ECHO_BYTES)
            stream = await node.open_stream(remote, "/echo/1.0.0")

            async def send() -> None:
                await stream.write(payload)
                await stream.close_write()

            async with asyncio.timeout(60):
                sender = asyncio.ensure_future(send())
                echoed = await stream.read()
                await sender
            assert echoed == payload


@pytest.mark.parametrize("muxer", list(MUXERS))
@pytest.mark.parametrize("kind", PEER_KINDS)
async def test_they_dial_us(kind: str, muxer: str) -> None:
    async with our_node(muxer) as node:
        seen: list[pw.PeerId] = []
        node.host.connection_callbacks.append(lambda conn: seen.append(conn.remote_peer))
        # The peer also listens, so it stays up after dialling and answers our identify
        # (py-libp2p delays identify answers by up to 0.5 s while it has no listen address).
        args = [
            "--dial",
            str(node.addrs[0]),
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--muxer",
            muxer,
            "--echo-bytes",
            str(ECHO_BYTES),
        ]
        async with interop_peer(kind, *args) as peer:
            result = await peer.wait_event("result", timeout=90)
            assert result["ok"], result
            assert result["peer_id"] == str(node.peer_id)
            assert result["echo_bytes"] == ECHO_BYTES
            assert result["rtt_ms"] > 0
            assert result["agent_version"] == node.config.agent_version
            assert "/echo/1.0.0" in result["protocols"]
            assert "/ipfs/id/1.0.0" in result["protocols"]
            assert result["muxer"] == MUXERS[muxer]
            # Our side identifies them on its own when they connect.
            assert len(set(seen)) == 1
            info = await node.identify(seen[0])
            assert info.agent_version.startswith(AGENT_PREFIX[kind]), info.agent_version
            assert "/ipfs/ping/1.0.0" in info.protocols
            rec = node.peerstore.get(seen[0])
            assert rec is not None
            assert rec.agent_version == info.agent_version
