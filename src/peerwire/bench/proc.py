"""Spawning benchmark worker processes and reading their JSON events.

Each worker is a separate OS process on 127.0.0.1, started with its own
command line (see :func:`worker_argv`). The runner reads its stdout events
through a thread per stream, so every wait has a timeout; a worker that does
not exit shortly after its stdin is closed is killed by its PID. Nothing
here kills anything the runner did not start.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

BENCH_DIR: Final = Path(__file__).resolve().parent
EXIT_GRACE: Final = 5.0
"""Seconds a worker has to exit after its stdin closes before it is killed."""
STDERR_LINES: Final = 30


class WorkerError(Exception):
    """A worker failed, timed out, or reported ``ok: false``."""

    def __init__(self, message: str, *, na: str | None = None) -> None:
        super().__init__(message)
        self.na = na
        """Set when the worker said the workload is not available (not a failure)."""


def worker_argv(
    subject: str,
    *,
    pylibp2p_python: str | None = None,
) -> list[str]:
    """The command that starts a worker for ``subject`` (arguments are appended later).

    Baselines run as a script so they never import peerwire (their start-up
    time is the floor); peerwire runs as a module of the installed package;
    py-libp2p runs as a script under the Python that has it.
    """
    if subject in ("raw-tcp", "raw-aead"):
        return [sys.executable, str(BENCH_DIR / "baselines.py")]
    if subject in ("peerwire", "peerwire-stream"):
        return [sys.executable, "-m", "peerwire.bench.peerwire_workloads"]
    if subject == "py-libp2p":
        if not pylibp2p_python:
            raise ValueError("py-libp2p needs --pylibp2p-python")
        return [pylibp2p_python, str(BENCH_DIR / "pylibp2p_workloads.py")]
    raise ValueError(f"unknown subject {subject!r}")


class Worker:
    """One running worker process: its events, its stderr tail, its end."""

    def __init__(self, argv: Sequence[str], *, name: str) -> None:
        self.name = name
        self.argv = list(argv)
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.pid = self.proc.pid
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                self._stderr.append(f"(stdout) {line}")
                continue
            if isinstance(event, dict):
                event["_at"] = time.perf_counter()
                self._events.put(event)
        self._events.put(None)  # end of stream

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line.rstrip())

    def stderr_tail(self, lines: int = 8) -> str:
        return "\n".join(list(self._stderr)[-lines:])

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """Wait for the next event named ``event`` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerError(f"{self.name}: no {event!r} event within {timeout:.0f} s")
            try:
                got = self._events.get(timeout=left)
            except queue.Empty:
                continue
            if got is None:
                self._events.put(None)  # stay at end of stream for later calls
                rc = self.proc.poll()
                raise WorkerError(
                    f"{self.name}: exited (code {rc}) before {event!r}: {self.stderr_tail()}"
                )
            if got.get("event") == "result" and not got.get("ok", False):
                na = got.get("na")
                raise WorkerError(f"{self.name}: {got.get('error') or na}", na=na)
            if got.get("event") == event:
                return got

    def send(self, line: str) -> None:
        """Write one command line (``go``) to the worker's stdin."""
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()

    def finish(self, grace: float = EXIT_GRACE) -> int | None:
        """Close stdin (the worker's cue to exit); kill it by PID if it lingers."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
            return None


def worker_args(
    role: str,
    subject: str,
    workload: str,
    params: dict[str, Any],
    *,
    connect: str = "",
) -> list[str]:
    """Arguments for :func:`peerwire.bench._wire.parse_args`."""
    args = ["--role", role, "--subject", subject, "--workload", workload]
    if connect:
        args += ["--connect", connect]
    for key in ("count", "size", "inflight", "warmup", "deadline", "pin_cpu"):
        if key in params:
            args += ["--" + key.replace("_", "-"), str(params[key])]
    if params.get("no_uvloop"):
        args.append("--no-uvloop")
    return args
