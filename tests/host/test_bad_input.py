"""Bad input from the network closes only the offending connection; the node keeps serving.

Each test attacks a listening node with raw bytes (or a half-honest client built
from our own upgrade steps), checks that the node closed that connection and
logged a specific error, and then checks that an honest peer still gets served.
"""

from __future__ import annotations

import asyncio
import logging
import struct

import pytest

import peerwire as pw
from peerwire.config import MPLEX, YAMUX
from peerwire.host.upgrade import upgrade
from peerwire.testing import make_node, running_nodes
from peerwire.transport.tcp import TcpTransport
from peerwire.varint import encode_uvarint

MS_HEADER = encode_uvarint(19) + b"/multistream/1.0.0\n"
NOISE_PROPOSAL = encode_uvarint(7) + b"/noise\n"


def tcp_port(node: pw.Node) -> int:
    addr = node.host.listen_addrs[0]
    port = addr.value_for("tcp")
    assert port is not None
    return int(port)


async def wait_closed_by_server(reader: asyncio.StreamReader, limit: float = 10) -> None:
    """Read until the server closes (FIN) or aborts (RST) the connection."""
    async with asyncio.timeout(limit):
        try:
            while await reader.read(65536):
                pass
        except ConnectionResetError:
            pass


async def still_serving(node: pw.Node) -> None:
    async with running_nodes(1, "tcp") as (honest,):
        assert await honest.connect(node.addrs[0]) == node.peer_id
        assert await honest.ping(node.peer_id) > 0


def logged(caplog: pytest.LogCaptureFixture, *needles: str) -> bool:
    return any(all(n in rec.getMessage() for n in needles) for rec in caplog.records)


async def test_garbage_bytes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "peerwire")
    async with running_nodes(1, "tcp") as (node,):
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port(node))
        writer.write(b"\xde\xad\xbe\xef" * 64)
        await wait_closed_by_server(reader)
        writer.close()
        # Garbage decodes as a huge multistream length prefix: refused before buffering.
        assert logged(caplog, "inbound connection", "RemoteLimitExceeded")
        await still_serving(node)


async def test_truncated_handshake(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "peerwire")
    async with running_nodes(1, "tcp") as (node,):
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port(node))
        writer.write(MS_HEADER + NOISE_PROPOSAL)
        answer = await asyncio.wait_for(reader.readexactly(len(MS_HEADER + NOISE_PROPOSAL)), 5)
        assert answer == MS_HEADER + NOISE_PROPOSAL
        # A Noise frame announcing 32 bytes of ephemeral key, cut off after 10.
        writer.write(struct.pack(">H", 32) + b"\x01" * 10)
        await writer.drain()
        writer.close()
        async with asyncio.timeout(10):
            while not logged(caplog, "inbound connection", "ConnectionLost"):
                await asyncio.sleep(0.02)
        await still_serving(node)


async def test_stall_mid_handshake(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "peerwire")
    node = make_node("tcp", config=pw.Config(handshake_timeout=0.5))
    async with node:
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port(node))
        writer.write(MS_HEADER + NOISE_PROPOSAL)
        await wait_closed_by_server(reader, limit=10)
        writer.close()
        assert logged(caplog, "inbound connection", "Timeout")
        await still_serving(node)


async def test_remote_offering_only_unknown_security(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "peerwire")
    async with running_nodes(1, "tcp") as (node,):
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port(node))
        proposal = b"/plaintext/2.0.0\n"
        writer.write(MS_HEADER + encode_uvarint(len(proposal)) + proposal)
        expected = MS_HEADER + encode_uvarint(3) + b"na\n"
        answer = await asyncio.wait_for(reader.readexactly(len(expected)), 5)
        assert answer == expected
        writer.close()
        await still_serving(node)


@pytest.mark.parametrize("muxer", [YAMUX, MPLEX])
async def test_oversized_frame_closes_the_connection(
    muxer: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "peerwire")
    async with running_nodes(1, "tcp") as (node,):
        raw = await TcpTransport().dial(node.host.listen_addrs[0])
        me = pw.Identity.generate()
        conn = await asyncio.wait_for(
            upgrade(
                raw, identity=me, config=pw.Config(muxers=(muxer,)), expected_peer=node.peer_id
            ),
            10,
        )
        if muxer == YAMUX:
            # DATA with SYN on stream 1 claiming 4 MiB: beyond the 1 MiB window.
            frame = struct.pack(">BBHII", 0, 0, 1, 1, 4 << 20) + b"\x00" * 1024
        else:
            # mplex NewStream id 1, then a message declaring 2 MiB (limit 1 MiB).
            frame = (
                encode_uvarint(1 << 3)
                + encode_uvarint(1)
                + b"1"
                + encode_uvarint((1 << 3) | 2)
                + encode_uvarint(2 << 20)
                + b"\x00" * 1024
            )
        assert conn._secure is not None
        conn.raw.writelines(conn._secure.encrypt_chunks([frame]))
        async with asyncio.timeout(10):
            await conn.wait_closed()
        assert logged(caplog, "protocol error", "closing connection")
        await still_serving(node)
