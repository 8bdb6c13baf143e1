"""The relay and broadcast flows of ``peerwire sim`` over Chord (and what the others support)."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from peerwire import Config, Node
from peerwire.errors import UsageError
from peerwire.overlay.chord import ChordConfig
from peerwire.sim import report
from peerwire.sim.drivers import OverlayParams, get_driver
from peerwire.sim.scenarios import Scenario, ScenarioResult, simulate

SMALL = Scenario(
    nodes=16,
    boot=3,
    overlay="chord",
    lookups=0,
    sends=0,
    routes=40,
    broadcasts=3,
    fast_crypto=True,
    memory="off",
)


def check_stable_ring(result: ScenarioResult, nodes: int) -> None:
    """Every figure a converged ring with no faults must show exactly."""
    sc = result.scenario
    s = result.summary()
    assert s["live_nodes"] == nodes
    assert s["bootstrap_pct"] == 100.0
    relay = result.relay
    assert relay.attempted == sc.routes
    assert relay.correct == sc.routes  # each at the successor of its key among the live nodes
    assert s["route_pct"] == 100.0
    assert s["route_misdelivered"] == 0
    assert len(relay.hops) == sc.routes
    assert max(relay.hops) <= math.ceil(math.log2(nodes))
    assert relay.stats["dropped_ttl"] == relay.stats["dropped_unroutable"] == 0
    assert set(result.broadcast) == {"push", "pull", "tree"}
    for mode, out in result.broadcast.items():
        assert out.broadcasts == sc.broadcasts, mode
        assert out.receivers == nodes - 1
        assert out.coverage == [1.0] * sc.broadcasts, mode
        assert out.deliveries == sc.broadcasts * (nodes - 1), mode
        assert s[f"broadcast_{mode}_coverage_pct"] == 100.0
    tree = result.broadcast["tree"]
    assert tree.stats["duplicates"] == 0
    assert tree.stats["frames_sent"] == sc.broadcasts * (nodes - 1)  # one frame per node
    pull = result.broadcast["pull"]
    assert pull.stats["bodies_received"] == sc.broadcasts * (nodes - 1)
    assert pull.stats["duplicates"] == 0


def test_stable_chord_ring_of_16() -> None:
    check_stable_ring(simulate(SMALL), 16)


def test_stable_chord_ring_of_70() -> None:
    scenario = dataclasses.replace(SMALL, nodes=70, boot=5, routes=60, broadcasts=2)
    check_stable_ring(simulate(scenario), 70)


def test_loss_and_crashes_push_still_reaches_every_live_node() -> None:
    scenario = dataclasses.replace(
        SMALL, nodes=60, boot=4, routes=30, broadcasts=3, drop=0.05, disconnect=0.1
    )
    result = simulate(scenario)
    s = result.summary()
    assert result.crashed == round(0.1 * 56)
    push = result.broadcast["push"]
    assert push.receivers == s["live_nodes"] - 1
    assert push.coverage == [1.0] * 3
    assert s["broadcast_push_coverage_pct"] == 100.0
    # Tree and pull are reported too (their figures are what the run measured).
    for mode in ("pull", "tree"):
        out = result.broadcast[mode]
        assert len(out.coverage) == 3
        assert all(0.0 <= c <= 1.0 for c in out.coverage)
        assert s[f"broadcast_{mode}_coverage_pct"] is not None
    assert result.relay.attempted == 30
    assert 0 < result.relay.delivered <= 30


def test_message_faults_hit_relay_and_broadcast_frames() -> None:
    # 20 % of every received message dropped: routed messages (one hop here) and
    # tree broadcasts (no redundancy) lose some; push floods around the losses.
    result = simulate(dataclasses.replace(SMALL, routes=30, broadcasts=2, drop=0.2))
    assert result.relay.attempted == 30
    assert result.relay.delivered < 30
    assert min(result.broadcast["tree"].coverage) < 1.0
    assert result.broadcast["push"].coverage == [1.0, 1.0]


def test_same_seed_same_flow_metrics() -> None:
    scenario = dataclasses.replace(
        SMALL, routes=20, broadcasts=2, drop=0.05, disconnect=0.1, route_to="keys"
    )
    first = simulate(scenario).metrics()
    assert first["relay"]["attempted"] == 20
    assert set(first["broadcast"]) == {"push", "pull", "tree"}
    assert simulate(scenario).metrics() == first


def test_overlays_without_relay_or_tree_skip_those_flows() -> None:
    mesh = simulate(dataclasses.replace(SMALL, overlay="mesh", nodes=10, routes=5, broadcasts=1))
    assert mesh.relay.attempted == 0
    assert mesh.summary()["route_pct"] is None
    assert set(mesh.broadcast) == {"push", "pull"}  # no tree without Chord's fingers
    assert mesh.broadcast["push"].coverage == [1.0]
    kad = simulate(
        dataclasses.replace(
            SMALL, overlay="kademlia", nodes=12, routes=10, broadcasts=1, route_to="nodes"
        )
    )
    assert kad.relay.correct == 10  # at the XOR-closest live node
    assert set(kad.broadcast) == {"push", "pull"}


def test_chord_config_reaches_the_nodes() -> None:
    assert Config().chord == ChordConfig()
    config = get_driver("chord").configure(Config(), OverlayParams(bucket_size=2, seed=5))
    assert config.chord.finger_successors == 2
    assert config.chord.seed == 5
    node = Node(overlay="chord", config=config)
    assert node.overlay is not None
    assert node.overlay.config is config.chord  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "kwargs",
    [{"routes": -1}, {"broadcasts": -1}, {"broadcast_modes": ("flood",)}, {"tree_copies": 0}],
)
def test_flow_settings_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        dataclasses.replace(SMALL, **kwargs)  # type: ignore[arg-type]


def test_reports_show_the_flows(tmp_path: Path) -> None:
    result = simulate(dataclasses.replace(SMALL, nodes=8, routes=6, broadcasts=1))
    console = Console(record=True, width=140)
    report.render([result], console)
    text = console.export_text()
    assert "route delivered at owner" in text
    assert "tree: coverage" in text
    wide = Console(record=True, width=250)
    report.render([result, result], wide)
    assert "route %" in wide.export_text()
    doc = json.loads(report.to_json([result]))["results"][0]
    assert doc["summary"]["route_pct"] == 100.0
    assert doc["summary"]["broadcast_tree_deliveries_per_message"] == 7.0
    assert doc["metrics"]["relay"]["hops"] == result.relay.hops
    assert doc["phases"].keys() >= {"route", "broadcast"}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(UsageError):
            report.plot([result], tmp_path / "out.png")
    else:
        assert report.plot([result], tmp_path / "out.png").stat().st_size > 0


def test_cli_json_over_chord() -> None:
    args = ["sim", "--overlay", "chord", "--nodes", "12", "--boot", "3", "--lookups", "0"]
    args += ["--sends", "0", "--routes", "12", "--broadcasts", "1", "--broadcast-modes"]
    args += ["push,tree", "--fast-crypto", "--json", "--memory", "off"]
    done = subprocess.run(
        [sys.executable, "-m", "peerwire.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["results"][0]
    summary = result["summary"]
    assert summary["overlay"] == "chord"
    assert summary["route_pct"] == 100.0
    assert summary["broadcast_push_coverage_pct"] == 100.0
    assert summary["broadcast_tree_deliveries_per_message"] == 11.0
    assert "broadcast_pull_count" not in summary
    assert result["scenario"]["broadcast_modes"] == ["push", "tree"]


def test_cli_help_loads_no_simulator() -> None:
    code = (
        "import sys\n"
        "from peerwire.cli import main\n"
        "for args in (['--help'], ['sim', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('peerwire.sim.', "
        "'peerwire.overlay.chord.'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.strip().splitlines()[-1]
    assert loaded == "['peerwire.overlay.chord.config', 'peerwire.sim.cli']"
