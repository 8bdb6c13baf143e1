"""Real libp2p peers as subprocesses (see interop/README.md for their CLI contract).

The peers are installed by ``interop/setup.sh`` (run by scripts/test.sh and CI).
If they are missing the tests fail with a message saying so; they are skipped
only when PEERWIRE_SKIP_INTEROP=1 is set explicitly.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
JS_DIR = REPO / "interop" / "js"
PY_PEER = REPO / "interop" / "py" / "peer.py"
PY_VENV_PYTHON = REPO / ".interop" / "pylibp2p-venv" / "bin" / "python"

PEER_KINDS = ["js", "py"]


def peer_command(kind: str) -> list[str]:
    if os.environ.get("PEERWIRE_SKIP_INTEROP") == "1":
        pytest.skip("interop peers disabled by PEERWIRE_SKIP_INTEROP=1")
    if kind == "js":
        node = shutil.which("node")
        if node is None or not (JS_DIR / "node_modules" / "libp2p").is_dir():
            pytest.fail("js-libp2p peer not installed: run `bash interop/setup.sh`")
        return [node, "--import", str(JS_DIR / "polyfill.mjs"), str(JS_DIR / "peer.mjs")]
    if not PY_VENV_PYTHON.exists():
        pytest.fail("py-libp2p peer not installed: run `bash interop/setup.sh`")
    return [str(PY_VENV_PYTHON), str(PY_PEER)]


class PeerProcess:
    """A running interop peer; JSON events from its stdout, one per line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []

    async def next_event(self, timeout: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise AssertionError(f"peer exited (code {self.proc.returncode}) early")
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.events.append(event)
                return dict(event)

    async def wait_event(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next_event(timeout)
                if event.get("event") == name:
                    return event


@asynccontextmanager
async def interop_peer(kind: str, *args: str, timeout: int = 90) -> AsyncIterator[PeerProcess]:
    cmd = [*peer_command(kind), *args, "--timeout", str(timeout)]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(REPO),
    )
    peer = PeerProcess(proc)
    try:
        yield peer
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if proc.stderr is not None:
            err = await proc.stderr.read()
            if err:
                print(f"--- {kind} peer stderr ---\n{err.decode(errors='replace')[-4000:]}")
