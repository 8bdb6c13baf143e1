"""What every benchmark worker process shares: arguments, JSON events, limits, meters.

This module is imported by workers that must *not* import peerwire: the raw
baselines (whose start-up time is the ceiling ``first-ping`` is compared to)
and the py-libp2p worker, which runs under another interpreter that has no
peerwire installed. So it uses the standard library only, and workers run as
scripts load it as a top-level module (their directory is ``sys.path[0]``).

A worker talks to the runner through its standard streams only: JSON events,
one per line, on stdout (``ready`` with the address to dial, ``result``, and
the step events of ``idle-conn-mem``), and commands on stdin (``go``; end of
file means "exit now"). Every worker also arms a guard that ends the process
after ``--deadline`` seconds whatever it is doing, so a hung benchmark can
never outlive its run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Final

OnMessage = Callable[[memoryview], None]

#: Workloads, in the order the runner shows them.
WORKLOADS: Final = (
    "oneway-1k",
    "oneway-1m",
    "rtt-1k",
    "inflight64-1k",
    "first-ping",
    "connect-rate",
    "idle-conn-mem",
)
ONEWAY: Final = frozenset({"oneway-1k", "oneway-1m"})
#: Protocol id the peerwire and py-libp2p workers serve their messages on.
BENCH_PROTOCOL: Final = "/bench/1.0.0"
#: Protocol id of the raw-stream variant (``peerwire-stream``).
STREAM_PROTOCOL: Final = "/bench-stream/1.0.0"
#: Payload of a ping in the raw baselines (libp2p ping also sends 32 bytes).
PING_SIZE: Final = 32
#: The message framing every subject uses: a 4-byte big-endian payload length.
HDR: Final = struct.Struct(">I")
MAX_MESSAGE: Final = 64 << 20
"""Largest message a :class:`Deframer` accepts (a benchmark sanity bound)."""
#: Exit code when the guard ends a worker that outlived ``--deadline``.
EXIT_DEADLINE: Final = 3
#: Exit code when a worker failed (after it reported the error as a result event).
EXIT_FAILED: Final = 1


def parse_args(argv: list[str] | None = None, *, prog: str | None = None) -> argparse.Namespace:
    """The command line every worker accepts (the runner builds it in ``proc.py``)."""
    p = argparse.ArgumentParser(prog=prog, description="peerwire benchmark worker")
    p.add_argument("--role", choices=("server", "client"), required=True)
    p.add_argument("--workload", choices=WORKLOADS, required=True)
    p.add_argument("--subject", default="", help="which variant (e.g. raw-tcp, raw-aead)")
    p.add_argument("--connect", default="", help="address of the server (client only)")
    p.add_argument("--count", type=int, default=1000, help="messages, requests or connections")
    p.add_argument("--size", type=int, default=1024, help="payload bytes per message")
    p.add_argument("--inflight", type=int, default=64, help="requests in flight (inflight64)")
    p.add_argument("--warmup", type=int, default=100, help="untimed requests before rtt-1k")
    p.add_argument("--deadline", type=float, default=60.0, help="seconds before forced exit")
    p.add_argument("--pin-cpu", type=int, default=-1, help="pin this process to one CPU")
    p.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    args = p.parse_args(argv)
    if args.count < 1 or args.size < 1 or args.inflight < 1 or args.warmup < 0:
        p.error("--count, --size and --inflight must be >= 1, --warmup >= 0")
    if args.role == "client" and not args.connect:
        p.error("a client needs --connect")
    return args


def emit(event: str, **fields: Any) -> None:
    """Write one JSON event line to stdout and flush it (the runner reads it at once)."""
    sys.stdout.write(json.dumps({"event": event, **fields}, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def hard_exit(code: int) -> None:
    """Leave now, without waiting for threads or loop shutdown that might hang."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def arm_guard(deadline: float) -> None:
    """End the process after ``deadline`` seconds, whatever it is doing."""
    guard = threading.Timer(deadline, hard_exit, args=(EXIT_DEADLINE,))
    guard.daemon = True
    guard.start()


def pin(cpu: int) -> None:
    """Pin this process to ``cpu`` (latency runs: measure software cost, not VM wake-ups)."""
    if cpu >= 0 and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass  # fewer CPUs than asked for: run unpinned rather than fail


def watch_stdin(on_line: Callable[[str], object], on_eof: Callable[[], object]) -> None:
    """Call ``on_line`` per stdin line and ``on_eof`` at end of file (from a daemon thread).

    The callbacks run in that thread: hand them to the event loop with
    ``call_soon_threadsafe`` (asyncio) or a trio token.
    """

    def run() -> None:
        try:
            for line in sys.stdin:
                on_line(line.strip())
        except (OSError, ValueError):
            pass
        on_eof()

    threading.Thread(target=run, name="stdin-watch", daemon=True).start()


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def rss_kib(pid: int | None = None) -> int:
    """Resident set size of ``pid`` (default: this process) in KiB, from /proc; 0 if unknown."""
    try:
        with open(f"/proc/{pid or os.getpid()}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class Meter:
    """Wall and CPU time between :meth:`start` and :meth:`stop`."""

    __slots__ = ("cpu0", "cpu1", "t0", "t1")

    def __init__(self) -> None:
        self.t0 = self.t1 = 0.0
        self.cpu0 = self.cpu1 = 0.0

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.cpu0 = cpu_seconds()

    def stop(self) -> None:
        self.t1 = time.perf_counter()
        self.cpu1 = cpu_seconds()

    @property
    def seconds(self) -> float:
        return max(self.t1 - self.t0, 1e-9)

    def fields(self) -> dict[str, float]:
        """``seconds``, ``cpu_seconds`` and ``cpu_pct`` (of one core) for a result event."""
        cpu = self.cpu1 - self.cpu0
        return {
            "seconds": round(self.seconds, 6),
            "cpu_seconds": round(cpu, 6),
            "cpu_pct": round(100.0 * cpu / self.seconds, 1),
        }


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of an ascending list, nearest-rank; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[rank]


def rtt_fields(rtts: list[float]) -> dict[str, float]:
    """Median and p99 of round-trip times given in seconds, as microseconds."""
    rtts.sort()
    return {
        "rtt_p50_us": round(percentile(rtts, 0.5) * 1e6, 2),
        "rtt_p99_us": round(percentile(rtts, 0.99) * 1e6, 2),
        "samples": len(rtts),
    }


def oneway_fields(count: int, size: int, meter: Meter) -> dict[str, float]:
    """Rates for ``count`` messages whose first and last arrivals ``meter`` spans.

    The interval runs from the first message's arrival to the last one's, so it
    holds ``count - 1`` inter-arrival gaps.
    """
    gaps = max(count - 1, 1)
    return {
        **meter.fields(),
        "msgs_per_s": round(gaps / meter.seconds, 1),
        "mb_per_s": round(gaps * size / meter.seconds / 1e6, 2),
    }


class Deframer:
    """Cuts a byte stream into 4-byte-length-prefixed messages.

    Complete messages are handed over as views of the caller's buffer (valid
    during the callback only); one that straddles feeds is copied into a
    reassembly buffer that is reused for the next one.
    """

    __slots__ = ("_active", "_body", "_filled", "_head", "_len", "_on_message")

    def __init__(self, on_message: OnMessage) -> None:
        self._on_message = on_message
        self._head = bytearray()
        self._body = bytearray()
        self._active = False
        self._len = self._filled = 0

    def feed(self, data: memoryview) -> None:
        pos = 0
        end = len(data)
        if self._active or self._head:
            pos = self._continue(data)
            if pos < 0:
                return
        on_message = self._on_message
        unpack = HDR.unpack_from
        while end - pos >= 4:
            (n,) = unpack(data, pos)
            stop = pos + 4 + n
            if stop > end:
                break
            on_message(data[pos + 4 : stop])
            pos = stop
        if pos < end:
            self._stash(data[pos:])

    def _begin(self, n: int) -> None:
        if n > MAX_MESSAGE:
            raise ValueError(f"message of {n} bytes is over the {MAX_MESSAGE} byte bound")
        if len(self._body) < n:
            self._body = bytearray(n)
        self._len = n
        self._filled = 0
        self._active = True

    def _stash(self, rest: memoryview) -> None:
        if len(rest) < 4:
            self._head[:] = rest
            return
        (n,) = HDR.unpack_from(rest)
        self._begin(n)
        body = rest[4:]
        self._body[: len(body)] = body
        self._filled = len(body)

    def _continue(self, data: memoryview) -> int:
        """Complete the pending message; the position after it, or -1 if ``data`` ran out."""
        pos = 0
        end = len(data)
        if not self._active:
            take = min(4 - len(self._head), end)
            self._head += data[:take]
            pos = take
            if len(self._head) < 4:
                return -1
            (n,) = HDR.unpack(self._head)
            self._head.clear()
            self._begin(n)
        take = min(self._len - self._filled, end - pos)
        self._body[self._filled : self._filled + take] = data[pos : pos + take]
        self._filled += take
        pos += take
        if self._filled < self._len:
            return -1
        self._active = False
        with memoryview(self._body) as view:
            self._on_message(view[: self._len])
        return pos
