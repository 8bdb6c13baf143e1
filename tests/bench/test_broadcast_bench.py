"""``peerwire bench --workloads bcast``: a ring of node processes, push vs tree.

The smoke test starts 4 node processes for ~1 s per mode and checks what the
run must always show (never timing): every node got messages from every other
node in both modes unless frames were dropped (and counted) under congestion,
the counters add up (nothing in flight after the drain, every broadcast
reached every node), and the report has the bcast rows. The ring check and
the figures are tested in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from rich.console import Console

import peerwire as pw
from peerwire.bench import broadcast_bench as bb
from peerwire.bench import report
from peerwire.bench.bcast_worker import RingCheck
from peerwire.bench.runner import applies

from ..relay.chord_net import joined_chord

NODES = 4
LABELS = [spec["label"] for spec in bb.METRIC_SPECS]


def run_bcast(*extra: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peerwire.cli", "bench", "--workloads", "bcast",
         "--bcast-nodes", str(NODES), "--bcast-seconds", "1", "--runs", "1", *extra],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.mark.timeout(180)  # ~10 s on an idle 2-vCPU box; the machine is shared
def test_bcast_smoke_every_node_hears_every_sender_in_both_modes() -> None:
    proc = run_bcast("--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    rows = {row["metric"]: row for row in result["rows"]}
    assert sorted(rows) == sorted(LABELS)
    for row in rows.values():
        assert row["subject"] == "peerwire"
        assert row["median"] is not None, row
        assert not row["problems"], row
    for label in ("bcast push", "bcast tree", "bcast tree÷push"):
        assert rows[label]["median"] > 0
    [sample] = result["samples"]
    assert not sample["error"], sample["error"]
    details = sample["server"]["bcast"]
    assert details["nodes"] == details["senders"] == NODES
    assert set(details["modes"]) == {"push", "tree"}
    for mode, got in details["modes"].items():
        # A tree frame dropped under congestion cuts off its subtree, and a sender
        # starved to ~5 messages in the 1 s run can lose all of them to one node
        # that way (CI saw it once). Such drops are counted (checked below), so
        # every node must hear every sender only in a run without drops.
        if not got["dropped"]:
            assert got["nodes_missing_authors"] == {}, (mode, got["nodes_missing_authors"])
        assert [n["index"] for n in got["nodes"]] == list(range(NODES))
        assert all(n["sent"] > 0 for n in got["nodes"]), (mode, got["nodes"])
        assert got["handler_duplicates"] == 0
        assert got["in_flight_after_drain"] == 0, mode
        assert got["ring_upset"] == [], mode
        totals = got["totals"]
        # Every frame sent was received or counted as dropped; nothing vanished.
        assert totals["frames_sent"] == totals["frames_received"] + totals["dropped_congestion"]
        if not got["dropped"]:  # a dropped push copy has other paths; a tree frame not
            assert got["reach"] == 1.0, mode
    # A converged 4-node ring: a tree delivers each message once, push floods 3 copies.
    tree = details["modes"]["tree"]
    assert tree["duplicates_per_msg"] == 0
    # Every frame that arrives is a delivery. Frames dropped under congestion
    # were counted as sent, so only a run without drops has one sent per delivery.
    assert tree["frames_received_per_msg"] == 1.0
    if not tree["dropped"]:
        assert tree["frames_per_msg"] == 1.0
    push = details["modes"]["push"]
    if not push["dropped"]:  # a node that lost every copy forwards none
        assert push["frames_per_msg"] == NODES - 1
    # The table printed from this report has the rows and the per-mode lines.
    console = Console(record=True, width=200)
    report.render_table(result, console)
    text = console.export_text()
    for label in LABELS:
        assert label in text
    assert "bcast round 1: 4 nodes, 4 sending, 1024 B" in text
    assert "  push: " in text
    assert "  tree: " in text


@pytest.mark.timeout(180)
def test_bcast_table_on_stdout_with_one_sender() -> None:
    proc = run_bcast("--bcast-senders", "1", "--bcast-size", "200")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for label in LABELS:
        assert label in proc.stdout
    assert "4 nodes, 1 sending, 200 B" in proc.stdout
    assert "got nothing from some senders" not in proc.stdout


def test_bad_bcast_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, said in (
        (["--bcast-nodes", "1"], "2..64 nodes"),
        (["--bcast-senders", "5", "--bcast-nodes", "4"], "senders <= nodes"),
    ):
        with pytest.raises(SystemExit):
            report.main(["--workloads", "bcast", *argv])
        assert said in capsys.readouterr().err
    bad = subprocess.run(
        [sys.executable, "-m", "peerwire.cli", "bench", "--workloads", "bcast",
         "--bcast-nodes", "1"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "--bcast-nodes" in bad.stderr


def test_bcast_is_opt_in_and_peerwire_only() -> None:
    assert "bcast" not in report.build_parser().parse_args([]).workloads
    assert report.build_parser().parse_args(["--workloads", "bcast"]).workloads == ("bcast",)
    assert applies("peerwire", "bcast")
    assert not any(applies(s, "bcast") for s in ("raw-tcp", "raw-aead", "py-libp2p"))
    with pytest.raises(ValueError, match="senders <= nodes"):
        bb.BcastParams(nodes=4, senders=5)
    assert bb.BcastParams(nodes=4).sending == 4
    assert bb.BcastParams(nodes=4, senders=1).sending == 1


# ------------------------------------------------------------- figures, pure
def _window(index: int, *, sent: int, unique: int, authors: int, before: dict[str, int]
            ) -> dict[str, Any]:  # fmt: skip
    return {"index": index, "sent": sent, "unique": unique, "rate": unique / 2.0,
            "authors": authors, "late_s": 0.0, "cpu_s": 0.5, "before": before,
            "delay_p50_ms": 1.0, "delay_p99_ms": 2.0 + index}  # fmt: skip


def _final(index: int, stats: dict[str, int], authors_total: int) -> dict[str, Any]:
    return {"index": index, "stats": stats, "authors_total": authors_total,
            "handler_duplicates": 0, "ring": {"stable": True}}  # fmt: skip


ZERO = {"originated": 0, "delivered": 0, "frames_sent": 0, "frames_received": 0,
        "duplicates": 0, "dropped_congestion": 0, "ring_changes": 0}  # fmt: skip


def test_summarize_mode_counts_deltas_and_missing_senders() -> None:
    params = bb.BcastParams(nodes=3, seconds=2.0)
    before = dict(ZERO, frames_sent=100, frames_received=100)  # an earlier mode's counts
    windows = [
        _window(0, sent=10, unique=8, authors=2, before=before),
        _window(1, sent=4, unique=12, authors=2, before=before),
        _window(2, sent=6, unique=10, authors=1, before=before),  # node 0 late in its window
    ]
    finals = [
        _final(0, dict(ZERO, originated=10, delivered=10, frames_sent=130,
                       frames_received=128, dropped_congestion=2), 2),
        _final(1, dict(ZERO, originated=4, delivered=16, frames_sent=116,
                       frames_received=116), 2),
        _final(2, dict(ZERO, originated=6, delivered=14, frames_sent=114,
                       frames_received=114), 1),  # never heard node 1
    ]  # fmt: skip
    got = bb.summarize_mode(windows, finals, params)
    assert got["msgs_per_s"] == 5.0
    assert (got["msgs_per_s_min"], got["msgs_per_s_max"]) == (4.0, 6.0)
    assert got["sent_per_s_per_sender"] == [2.0, 3.0, 5.0]
    assert got["totals"]["frames_sent"] == 60
    assert got["totals"]["delivered"] == 40
    assert got["frames_per_msg"] == 1.5
    assert got["dropped"] == 2
    assert got["reach"] == 1.0  # 40 deliveries of 20 broadcasts to 2 other nodes each
    assert got["nodes_missing_authors"] == {2: 1}
    assert got["nodes_missing_authors_in_window"] == {2: 1}
    assert (got["delay_p50_ms_median"], got["delay_p99_ms_max"]) == (1.0, 4.0)
    assert bb._in_flight(windows, finals) == 0  # 60 sent = 58 received + 2 dropped
    values = bb.values_of({"push": got, "tree": dict(got, msgs_per_s=15.0)})
    assert values["tree_vs_push"] == 3.0
    assert values["push_dropped"] == 2.0
    warned = bb.warnings({"modes": {"push": got}})
    assert any("dropped 2 frames" in w for w in warned)
    assert any("{2: 1}" in w for w in warned)


def test_senders_subset_expect_only_senders() -> None:
    params = bb.BcastParams(nodes=3, senders=1, seconds=1.0)
    windows = [_window(i, sent=5 if i == 0 else 0, unique=0 if i == 0 else 5,
                       authors=0 if i == 0 else 1, before=ZERO) for i in range(3)]  # fmt: skip
    finals = [_final(i, dict(ZERO), 0 if i == 0 else 1) for i in range(3)]
    got = bb.summarize_mode(windows, finals, params)
    assert got["nodes_missing_authors"] == {}
    assert got["sent_per_s_per_sender"] == [5.0, 5.0, 5.0]
    assert got["msgs_per_s_min"] == 2.5  # the sender, which receives nothing, is left out


# ------------------------------------------------------------ the ring check
async def test_ring_check_on_a_joined_ring() -> None:
    async with joined_chord(6, seed=11, rounds=6) as nodes:
        peers = [n.peer_id for n in nodes]
        states = [RingCheck(n, peers).state() for n in nodes]
        assert all(s["stable"] for s in states), states
        # Expecting a member that never joined: no node's lists can match.
        stranger = pw.Identity.generate().peer_id
        assert not any(RingCheck(n, [*peers, stranger]).state()["stable"] for n in nodes)
