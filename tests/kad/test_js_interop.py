"""The DHT against js-libp2p's @libp2p/kad-dht (interop/js/kad.mjs), both directions, over TCP.

The js peer runs in server mode with its loopback-dropping address filter
turned off and a validator for the "/test/" namespace; it takes commands on
stdin and answers in JSON lines (see the header of kad.mjs).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import peerwire as pw
from peerwire.protocols.kad import KadConfig, LookupReport

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
JS_DIR = REPO / "interop" / "js"
_seeds = itertools.count(1)


def js_command() -> list[str]:
    if os.environ.get("PEERWIRE_SKIP_INTEROP") == "1":
        pytest.skip("interop peers disabled by PEERWIRE_SKIP_INTEROP=1")
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "@libp2p" / "kad-dht").is_dir():
        pytest.fail("js-libp2p kad-dht not installed: run `bash interop/setup.sh`")
    return [node, "--import", str(JS_DIR / "polyfill.mjs"), str(JS_DIR / "kad.mjs")]


class JsKad:
    """A running kad.mjs: its listening event, and ``call`` for commands."""

    def __init__(self, proc: asyncio.subprocess.Process, listening: dict[str, Any]) -> None:
        self.proc = proc
        self.peer_id = pw.PeerId.from_string(listening["peer_id"])
        self.addr = listening["addrs"][0]
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            fut = self._waiting.pop(event.get("id", -1), None)
            if fut is not None and not fut.done():
                fut.set_result(event)
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(AssertionError(f"js peer exited ({self.proc.returncode})"))

    async def call(self, cmd: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        """Run a command; its answer (assert ok)."""
        assert self.proc.stdin is not None
        cid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[cid] = fut
        self.proc.stdin.write((json.dumps({"id": cid, "cmd": cmd, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        async with asyncio.timeout(timeout):
            answer = await fut
        assert answer["ok"], f"js {cmd} failed: {answer.get('error')}"
        return answer


@asynccontextmanager
async def js_kad_peer(timeout: int = 90) -> AsyncIterator[JsKad]:
    proc = await asyncio.create_subprocess_exec(
        *js_command(),
        "--timeout",
        str(timeout),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(REPO),
    )
    peer: JsKad | None = None
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = await proc.stdout.readline()
        listening = json.loads(line)
        assert listening["event"] == "listening", listening
        peer = JsKad(proc, listening)
        yield peer
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if peer is not None:
            await peer._reader
        if proc.stderr is not None:
            err = await proc.stderr.read()
            if err:
                print(f"--- js kad peer stderr ---\n{err.decode(errors='replace')[-4000:]}")


def our_node(*bootstrap: str) -> pw.Node:
    return pw.Node(
        listen=["/ip4/127.0.0.1/tcp/0"],
        overlay="kademlia",
        bootstrap=list(bootstrap),
        config=pw.Config(kad=KadConfig(seed=next(_seeds))),
    )


def forget(node: pw.Node, peer: pw.PeerId) -> None:
    """Make ``node`` forget ``peer`` (test-only: the peer store has no public removal)."""
    node.peerstore._records.pop(peer, None)
    node.dht.table.remove(peer)


async def test_we_find_a_node_through_js() -> None:
    async with js_kad_peer() as js, AsyncExitStack() as stack:
        a = await stack.enter_async_context(our_node(js.addr))
        b = await stack.enter_async_context(our_node(js.addr))
        assert js.peer_id in a.dht.table  # js answered our bootstrap FIND_NODE
        await js.call("wait_peer", peer_id=str(b.peer_id))
        # a must learn b from js alone.
        await a.disconnect(b.peer_id)
        async with asyncio.timeout(5):
            while a.connection(b.peer_id) is not None:
                await asyncio.sleep(0.01)
        forget(a, b.peer_id)
        reports: list[LookupReport] = []
        a.dht.lookup_listeners.append(reports.append)
        info = await a.dht.find_peer(b.peer_id)
        assert info.peer_id == b.peer_id
        assert b.addrs[0].without_peer_id() in info.addrs
        assert reports[-1].found
        assert reports[-1].stats.responses >= 1
        closest = await a.dht.get_closest_peers(b"some key")
        assert set(closest) == {js.peer_id, b.peer_id}


async def test_js_finds_a_node_through_us() -> None:
    async with js_kad_peer() as js, AsyncExitStack() as stack:
        a = await stack.enter_async_context(our_node())
        await js.call("dial", addr=str(a.addrs[0]))
        await js.call("wait_peer", peer_id=str(a.peer_id))
        # b joins through a only; js has never been told about it.
        b = await stack.enter_async_context(our_node(str(a.addrs[0])))
        found = await js.call("find_peer", peer_id=str(b.peer_id))
        assert str(b.addrs[0].without_peer_id()) in found["addrs"]
        closest = await js.call("closest", key="another key")
        assert {str(a.peer_id), str(b.peer_id)} <= set(closest["peers"])


async def test_values_both_ways() -> None:
    async with js_kad_peer() as js, AsyncExitStack() as stack:
        a = await stack.enter_async_context(our_node())
        # Stored only on a (no peers yet): js must fetch it with GET_VALUE from us.
        assert await a.dht.put_value(b"/test/early", b"from peerwire") == 0
        await js.call("dial", addr=str(a.addrs[0]))
        await js.call("wait_peer", peer_id=str(a.peer_id))
        got = await js.call("get", key="/test/early")
        assert got["value"] == "from peerwire"
        assert got["from"] == str(a.peer_id)
        # Our PUT_VALUE is accepted by js's handler (it echoes the record back).
        assert await a.dht.put_value(b"/test/from-py", b"hello js") >= 1
        assert (await js.call("get", key="/test/from-py"))["value"] == "hello js"
        # js's PUT_VALUE is accepted by ours.
        put = await js.call("put", key="/test/from-js", value="hello peerwire")
        assert put["stored_on"] >= 1
        loop = asyncio.get_running_loop()
        held = a.dht.records.get(b"/test/from-js", loop.time())
        assert held is not None
        assert held.value == b"hello peerwire"
        # With a gone, a fresh node can only get the value from js's GET_VALUE answer.
        await a.stop()
        c = await stack.enter_async_context(our_node(js.addr))
        assert await c.dht.get_value(b"/test/from-js") == b"hello peerwire"
