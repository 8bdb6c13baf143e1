"""The ``peerwire`` command line, run as a user would run it (subprocesses)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

PEERWIRE = [sys.executable, "-m", "peerwire.cli"]
SEED_11 = "11" * 32
PEER_11 = "12D3KooWPqT2nMDSiXUSx5D7fasaxhxKigVhcqfkKqrLghCq9jxz"


async def run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *PEERWIRE, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_id_creates_key_once(tmp_path: Path) -> None:
    key = tmp_path / "node.key"
    code, out, _ = await run("id", "--key", str(key))
    assert code == 0
    first = out.strip()
    assert first.startswith("12D3KooW")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    code, out, _ = await run("id", "--key", str(key))
    assert (code, out.strip()) == (0, first)


async def test_id_rejects_a_corrupt_key_file(tmp_path: Path) -> None:
    key = tmp_path / "bad.key"
    key.write_bytes(b"not a key")
    code, _, err = await run("id", "--key", str(key))
    assert code != 0
    assert str(key) in err


async def test_node_json_ping_and_echo() -> None:
    proc = await asyncio.create_subprocess_exec(
        *PEERWIRE,
        "node",
        "--seed",
        SEED_11,
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--echo",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert first["event"] == "listening"
        assert first["peer_id"] == PEER_11
        addr = first["addrs"][0]
        assert addr.startswith("/ip4/127.0.0.1/tcp/")
        assert addr.endswith(f"/p2p/{PEER_11}")

        code, out, err = await run("ping", addr, "--count", "3", "--json")
        assert code == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["ok"] is True
        assert result["peer_id"] == PEER_11
        assert len(result["rtts_ms"]) == 3

        connected = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
        assert connected["event"] == "connected"
        assert connected["security"] == "/noise"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0


async def test_ping_unreachable_fails_cleanly() -> None:
    code, _, err = await run("ping", "/ip4/127.0.0.1/tcp/1", "--count", "1")
    assert code == 1
    assert "ConnectionLost" in err


async def test_demo_runs() -> None:
    code, out, err = await run("demo", "--nodes", "3", timeout=120)
    assert code == 0, err
    assert "/noise" in out
    assert "/yamux/1.0.0" in out
    assert "3 connections" in out
    assert "Chord ring of 16 nodes" in out
    assert "Relay from" in out
    for mode in ("push", "pull", "tree"):
        assert f"│ {mode} " in out


@pytest.mark.parametrize("bad", ["zz", "11" * 31])
async def test_bad_seed_is_a_usage_error(bad: str) -> None:
    code, _, err = await run("node", "--seed", bad)
    assert code == 2
    assert "seed" in err


async def _next_event(proc: asyncio.subprocess.Process, wanted: str) -> dict[str, object]:
    """The next JSON line whose event is ``wanted`` (at most 20 lines, 30 s each)."""
    assert proc.stdout is not None
    for _ in range(20):
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, f"node exited before a {wanted!r} event"
        event = json.loads(line)
        if event["event"] == wanted:
            return dict(event)
    raise AssertionError(f"no {wanted!r} event in 20 lines")


@pytest.mark.parametrize("overlay", ["kademlia", "chord"])
async def test_node_with_an_overlay_joins_through_its_bootstrap_peer(overlay: str) -> None:
    def spawn(*extra: str) -> Any:
        return asyncio.create_subprocess_exec(
            *PEERWIRE,
            "node",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--overlay",
            overlay,
            "--json",
            *extra,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    first = await spawn()
    second = None
    try:
        boot = (await _next_event(first, "listening"))["addrs"]
        assert isinstance(boot, list)
        second = await spawn("--bootstrap", boot[0])
        joined = await _next_event(second, "joined")
        assert joined["overlay"] == overlay
        assert joined["neighbours"] == 1
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 10)
