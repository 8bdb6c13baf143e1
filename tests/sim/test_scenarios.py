"""The scenario runner: matrix rows on virtual time, determinism, reports and the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from peerwire.errors import UsageError
from peerwire.sim import report
from peerwire.sim.drivers import DRIVERS, MeshDriver, get_driver, register_driver
from peerwire.sim.network import LinkSpec
from peerwire.sim.scenarios import Scenario, matrix, simulate, simulate_all

FAST = Scenario(nodes=10, boot=3, lookups=10, sends=10, fast_crypto=True, memory="off")


def test_mesh_rows_deliver_every_message() -> None:
    for nodes in (10, 100):
        result = simulate(dataclasses.replace(FAST, overlay="mesh", nodes=nodes, sends=20))
        s = result.summary()
        assert s["bootstrap_pct"] == 100.0
        assert s["send_pct"] == 100.0
        assert s["lookups"] == 0  # the mesh has no lookup
        assert s["crypto"] == "plaintext"


def test_kademlia_row_n10() -> None:
    s = simulate(FAST).summary()
    assert s["live_nodes"] == 10
    assert s["bootstrap_pct"] == 100.0
    # Ten nodes all know each other: no lookup has a target to find.
    assert s["lookups"] + s["lookups_skipped"] == 10
    assert s["lookup_pct"] in (None, 100.0)
    assert s["send_pct"] in (None, 100.0)


def test_kademlia_row_n100() -> None:
    scenario = dataclasses.replace(FAST, nodes=100, boot=5, lookups=40, sends=10, bucket_size=10)
    result = simulate(scenario)
    s = result.summary()
    assert s["bootstrap_pct"] == 100.0
    assert s["lookup_pct"] >= 99.0
    assert s["rounds_max"] <= math.log2(100)
    assert s["send_pct"] == 100.0
    assert result.messages_per_node > 0
    assert len(result.lookup_times) == result.lookups_ok


def test_kademlia_row_with_faults_and_bucket_parameters() -> None:
    scenario = dataclasses.replace(
        FAST, nodes=40, boot=3, drop=0.05, disconnect=0.1, bucket_size=8, bucket_count=16
    )
    result = simulate(scenario)
    s = result.summary()
    assert result.crashed == round(0.1 * 37)
    assert s["live_nodes"] == 40 - result.crashed
    assert s["bootstrap_pct"] == 100.0
    assert s["lookup_pct"] >= 80.0
    assert "10% disconnect" in s["faults"]
    assert "5% drop" in s["faults"]


def test_same_seed_same_metrics_different_seed_different_metrics() -> None:
    scenario = Scenario(
        nodes=16,
        boot=3,
        lookups=12,
        sends=6,
        drop=0.05,
        delay=0.05,
        disconnect=0.1,
        link=LinkSpec(latency=0.03, jitter=0.02, loss=0.02, bandwidth=2e6),
        memory="off",
    )  # Noise on: its random ephemeral keys must not change any figure
    first = simulate(scenario).metrics()
    assert simulate(scenario).metrics() == first
    assert simulate(dataclasses.replace(scenario, seed=2)).metrics() != first


def test_same_seed_same_metrics_in_fresh_processes() -> None:
    code = (
        "import json\n"
        "from peerwire.sim.scenarios import Scenario, simulate\n"
        "from peerwire.sim.network import LinkSpec\n"
        "r = simulate(Scenario(nodes=12, boot=3, lookups=8, sends=4, drop=0.1, "
        "link=LinkSpec(latency=0.02, jitter=0.02), fast_crypto=True, memory='off'))\n"
        "print(json.dumps(r.metrics(), sort_keys=True))\n"
    )
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]


def test_matrix_is_the_spacemesh_product() -> None:
    rows = list(matrix(FAST, nodes=(10, 100, 1000), boots=(3, 5, 10), rate=0.2))
    assert len(rows) == 3 * 3 * 4
    assert {(r.nodes, r.boot) for r in rows} == {
        (n, b) for n in (10, 100, 1000) for b in (3, 5, 10)
    }
    faults = [r.fault_label for r in rows[:4]]
    assert faults == ["none", "20% disconnect", "20% drop", "20% delay 2s"]
    assert list(matrix(FAST, nodes=(4,), boots=(3, 5))) == list(
        matrix(FAST, nodes=(4,), boots=(3,))
    )


def test_a_matrix_on_two_processes_gives_the_same_results_in_order() -> None:
    rows = list(matrix(FAST, nodes=(10,), boots=(3,), rate=0.2))
    alone = [r.metrics() for r in simulate_all(rows, jobs=1)]
    results = list(simulate_all(rows, jobs=2))
    assert [r.scenario for r in results] == rows
    assert [r.metrics() for r in results] == alone
    with pytest.raises(UsageError):
        list(simulate_all(rows, jobs=0))


def test_cli_matrix_jobs() -> None:
    args = ["sim", "--matrix", "--matrix-nodes", "10", "--matrix-boots", "3", "--fault-rate", "0.2"]
    args += ["--lookups", "4", "--sends", "4", "--fast-crypto", "--memory", "off"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "peerwire.cli", *args, *extra],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
        return done

    def metrics(done: subprocess.CompletedProcess[str]) -> list[object]:
        return [r["metrics"] for r in json.loads(done.stdout)["results"]]

    assert metrics(run("--json", "--jobs", "2")) == metrics(run("--json"))
    table = run("--jobs", "2")
    assert "4 scenarios, 2 at a time" in table.stderr
    assert "[4/4] N=10 boot=3 faults=20% delay 2s" in table.stderr


def test_reports_say_which_security_was_used(tmp_path: Path) -> None:
    result = simulate(dataclasses.replace(FAST, overlay="mesh", lookups=0, sends=3))
    console = Console(record=True, width=120)
    report.render([result], console)
    text = console.export_text()
    assert "security" in text
    assert "plaintext" in text
    report.render([result, result], console)
    doc = json.loads(report.to_json([result]))
    assert doc["results"][0]["summary"]["crypto"] == "plaintext"
    assert doc["results"][0]["scenario"]["nodes"] == 10
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(UsageError, match=r"peerwire\[plot\]"):
            report.plot([result], tmp_path / "out.png")
    else:
        assert report.plot([result], tmp_path / "out.png").stat().st_size > 0


def test_cli_runs_a_scenario_as_json() -> None:
    args = ["sim", "--overlay", "mesh", "--nodes", "10", "--boot", "3"]
    args += ["--lookups", "0", "--sends", "5", "--fast-crypto", "--json", "--memory", "off"]
    done = subprocess.run(
        [sys.executable, "-m", "peerwire.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)["results"][0]["summary"]
    assert summary["crypto"] == "plaintext"
    assert summary["send_pct"] == 100.0


def test_cli_plot_without_matplotlib_fails_before_running(tmp_path: Path) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("matplotlib is installed")
    done = subprocess.run(
        [sys.executable, "-m", "peerwire.cli", "sim", "--plot", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "pip install 'peerwire[plot]'" in done.stderr


def test_cli_refuses_an_unknown_overlay() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "peerwire.cli", "sim", "--overlay", "nope", "--nodes", "4"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "unknown overlay" in done.stderr


def test_drivers_are_pluggable() -> None:
    class Ring(MeshDriver):
        name = "ring-test"

    register_driver("ring-test", Ring)
    try:
        assert isinstance(get_driver("ring-test"), Ring)
        result = simulate(dataclasses.replace(FAST, overlay="ring-test", lookups=0, sends=2))
        assert result.summary()["send_pct"] == 100.0
    finally:
        del DRIVERS["ring-test"]
    with pytest.raises(UsageError, match="unknown overlay"):
        get_driver("ring-test")


@pytest.mark.parametrize(
    "kwargs", [{"nodes": 1}, {"boot": 0}, {"boot": 20}, {"drop": 2.0}, {"lookups": -1}]
)
def test_scenario_validates(kwargs: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        dataclasses.replace(FAST, **kwargs)
