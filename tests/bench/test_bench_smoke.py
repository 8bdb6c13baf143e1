"""``peerwire bench``: the harness runs end to end, and its baseline codecs are right.

No timing is asserted: only that every workload x subject produced a result,
that the figures and same-run ratios are positive, and that the framing and
AEAD batching used by the raw baselines deliver exactly what was sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerwire.bench import _wire, baselines
from peerwire.bench.runner import SUBJECTS, applies

PYLIBP2P_PYTHON = Path(__file__).resolve().parents[2] / ".interop/pylibp2p-venv/bin/python"
TINY = "0.02"  # of --quick counts: a few thousand 1 KiB messages, a handful of connections


def run_bench(*extra: str, timeout: float = 170) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "peerwire.cli", "bench", "--quick", "--json", "--scale", TINY,
         *extra],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def check_report(report: dict[str, Any], subjects: tuple[str, ...]) -> None:
    rows = report["rows"]
    seen = {(r["workload"], r["subject"]) for r in rows}
    for workload in _wire.WORKLOADS:
        for subject in subjects:
            if applies(subject, workload):
                assert (workload, subject) in seen, (workload, subject)
    for row in rows:
        where = (row["metric"], row["subject"], row["problems"])
        assert row["median"] is not None, where
        assert not row["problems"], where
        if row["workload"] == "idle-conn-mem":
            # RSS moves in pages: a few idle raw connections may not grow it at all.
            assert row["median"] >= 0, where
            continue
        assert row["median"] > 0, where
        assert row["vs_raw_tcp"] > 0, where
        assert row["vs_raw_aead"] > 0, where
        if row["subject"].startswith("peerwire") and "py-libp2p" in subjects:
            assert row["vs_py_libp2p"] > 0, where
    for sample in report["samples"]:
        assert not sample["error"], sample
    assert report["options"]["runs"] == 1


@pytest.mark.timeout(180)  # ~20 s on an idle 2-vCPU box; the machine is shared
def test_bench_quick_json_has_every_workload_and_subject() -> None:
    report = run_bench()
    subjects = tuple(s for s in SUBJECTS if s != "py-libp2p")
    assert tuple(report["options"]["subjects"]) == subjects
    check_report(report, subjects)
    loops = {s["loop"] for s in report["samples"]}
    assert loops <= {"uvloop", "asyncio"}


def test_bench_subset_without_uvloop_prints_a_table() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "peerwire.cli", "bench", "--quick", "--scale", TINY,
         "--no-uvloop", "--workloads", "oneway-1k,rtt-1k", "--subjects", "raw-tcp,peerwire"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "oneway-1k" in proc.stdout
    assert "rtt-1k p99" in proc.stdout
    assert "peerwire=asyncio" in proc.stdout
    assert "first-ping" not in proc.stdout


@pytest.mark.interop
@pytest.mark.timeout(180)  # py-libp2p takes ~1 s to import in each of its ~15 processes
@pytest.mark.skipif(not PYLIBP2P_PYTHON.exists(), reason="run interop/setup.sh for py-libp2p")
def test_bench_with_pylibp2p() -> None:
    report = run_bench("--pylibp2p-python", str(PYLIBP2P_PYTHON))
    check_report(report, SUBJECTS)


# --------------------------------------------------------------- baseline codecs
class FakeTransport:
    """Collects written bytes (copied: the sender may reuse its buffers)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.data += data

    def writelines(self, chunks: list[bytes | memoryview]) -> None:
        for chunk in chunks:
            self.data += chunk


def feed_in_pieces(feed: Any, data: bytes, cuts: list[int]) -> None:
    pos = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        if cut > pos:
            feed(memoryview(data)[pos:cut])
            pos = cut


messages = st.lists(st.binary(max_size=3000), max_size=40)
cuts = st.lists(st.integers(min_value=0, max_value=200_000), max_size=30)


def deframe(data: bytes, how: str, split: list[int]) -> list[bytes]:
    got: list[bytes] = []
    deframer = _wire.Deframer(lambda view: got.append(bytes(view)))
    if how == "whole":
        deframer.feed(memoryview(data))
    elif how == "bytes":
        for i in range(len(data)):
            deframer.feed(memoryview(data)[i : i + 1])
    else:
        feed_in_pieces(deframer.feed, data, split)
    return got


@settings(max_examples=60, deadline=None)
@given(msgs=messages, split=cuts)
def test_deframer_round_trip_whole_split_and_bytewise(msgs: list[bytes], split: list[int]) -> None:
    wire = b"".join(_wire.HDR.pack(len(m)) + m for m in msgs)
    for how in ("whole", "split", "bytes"):
        assert deframe(wire, how, split) == msgs


@settings(max_examples=40, deadline=None)
@given(msgs=messages, big=st.booleans(), split=cuts)
def test_aead_batches_round_trip(msgs: list[bytes], big: bool, split: list[int]) -> None:
    if big:  # larger than one AEAD frame: split across several and reassembled
        msgs = [*msgs, os.urandom(200_000)]
    key = os.urandom(32)
    transport = FakeTransport()
    sender = baselines.Sender(transport, key)  # type: ignore[arg-type]
    for m in msgs:
        sender.add(m)
    sender.flush()
    wire = bytes(transport.data)
    frame_lengths = []
    pos = 0
    while pos < len(wire):
        (n,) = baselines.NOISE_LEN.unpack_from(wire, pos)
        frame_lengths.append(n)
        pos += 2 + n
    assert pos == len(wire)
    assert all(n <= 65535 for n in frame_lengths)
    if msgs and len(wire) < 60_000:
        assert len(frame_lengths) == 1  # many messages, one AEAD call
    got: list[bytes] = []
    receiver = baselines.AeadReceiver(key, _wire.Deframer(lambda v: got.append(bytes(v))).feed)
    feed_in_pieces(receiver.feed, wire, split)
    assert got == msgs


def test_aead_receiver_rejects_tampering() -> None:
    from cryptography.exceptions import InvalidTag

    key = os.urandom(32)
    transport = FakeTransport()
    sender = baselines.Sender(transport, key)  # type: ignore[arg-type]
    sender.add(b"x" * 100)
    sender.flush()
    wire = bytearray(transport.data)
    wire[10] ^= 1
    receiver = baselines.AeadReceiver(key, lambda view: None)
    with pytest.raises(InvalidTag):
        receiver.feed(memoryview(bytes(wire)))


def test_plain_sender_batches_and_frames() -> None:
    transport = FakeTransport()
    sender = baselines.Sender(transport, None)  # type: ignore[arg-type]
    msgs = [bytes([i]) * 1024 for i in range(100)]
    for m in msgs:
        sender.add(m)
    sender.flush()
    assert deframe(bytes(transport.data), "whole", []) == msgs
