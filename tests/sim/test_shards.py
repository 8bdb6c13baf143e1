"""One simulation over several processes: windows, mirrors, merged results, the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import threading
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

import pytest

from peerwire.errors import UsageError
from peerwire.sim import run_virtual
from peerwire.sim.network import LinkSpec
from peerwire.sim.scenarios import Scenario, simulate
from peerwire.sim.shard import ShardGone, ShardWindow, owner_of

KAD = Scenario(nodes=60, boot=3, lookups=12, sends=12, fast_crypto=True, memory="off", shards=2)


# ---------------------------------------------------------------- the windows
def _in_threads(*mains: Any) -> list[Any]:
    """Run each coroutine function on a virtual loop of its own thread; their results."""
    results: list[Any] = [None] * len(mains)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = run_virtual(mains[i]())
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(mains))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a shard thread hung"
    if errors:
        raise errors[0]
    return results


def _pair(lookahead: float = 0.05) -> tuple[ShardWindow, ShardWindow, Connection, Connection]:
    a, b = Pipe(duplex=True)
    return ShardWindow(0, 2, {1: a}, lookahead), ShardWindow(1, 2, {0: b}, lookahead), a, b


def test_timed_messages_run_at_their_time_on_the_other_shard() -> None:
    zero, one, _, _ = _pair()
    seen: dict[str, list[float]] = {"zero": [], "one": []}

    async def shard(window: ShardWindow, me: str, other: int) -> float:
        loop = asyncio.get_running_loop()
        window.attach(loop)  # type: ignore[arg-type]
        done = loop.create_future()

        def ping(hops: int) -> None:
            seen[me].append(loop.time())
            if hops < 4:
                window.post(other, loop.time() + 0.1, "ping", hops + 1)
            else:
                window.signal(other, "done", None)
                done.set_result(None)

        window.on("ping", ping)
        window.on("done", lambda _: done.done() or done.set_result(None))
        if me == "zero":
            await asyncio.sleep(0.3)  # both sides idle until then: windows jump ahead
            window.post(other, loop.time() + 0.1, "ping", 0)
        await done
        await window.barrier("end")
        window.detach()
        return loop.time()

    end0, end1 = _in_threads(lambda: shard(zero, "zero", 1), lambda: shard(one, "one", 0))
    assert seen["one"] == pytest.approx([0.4, 0.6, 0.8])
    assert seen["zero"] == pytest.approx([0.5, 0.7])
    assert end0 == end1  # a barrier resumes every shard at the same virtual time
    assert zero.rounds == one.rounds


def test_a_barrier_hands_every_shard_every_payload() -> None:
    zero, one, _, _ = _pair()

    async def shard(window: ShardWindow, wait: float) -> list[Any]:
        loop = asyncio.get_running_loop()
        window.attach(loop)  # type: ignore[arg-type]
        await asyncio.sleep(wait)
        got = await window.barrier("b", {"shard": window.index, "at": loop.time()})
        window.detach()
        return [got, loop.time()]

    (got0, t0), (got1, t1) = _in_threads(lambda: shard(zero, 1.0), lambda: shard(one, 3.0))
    assert got0 == got1
    assert [p["shard"] for p in got0] == [0, 1]
    assert t0 == t1 >= 3.0


def test_a_shard_that_goes_away_is_reported() -> None:
    zero, _, _, b = _pair()
    b.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        zero.attach(loop)  # type: ignore[arg-type]
        await asyncio.sleep(1.0)

    with pytest.raises(ShardGone, match="shard 1 is gone"):
        run_virtual(main())


def test_windows_need_a_lookahead() -> None:
    a, _ = Pipe()
    with pytest.raises(UsageError):
        ShardWindow(0, 2, {1: a}, 0.0)


def test_nodes_are_dealt_round_robin() -> None:
    assert [owner_of(i, 3) for i in range(7)] == [0, 1, 2, 0, 1, 2, 0]


# ---------------------------------------------------------------- scenarios
def test_two_shards_bootstrap_look_up_and_send() -> None:
    s = simulate(KAD).summary()
    assert s["live_nodes"] == 60
    assert s["bootstrap_pct"] == 100.0
    assert s["lookups"] + s["lookups_skipped"] == 12
    assert s["lookups"] > 0
    assert s["lookup_pct"] == 100.0
    assert s["sends"] > 0
    assert s["send_pct"] == 100.0
    assert s["messages_per_node"] > 0
    assert s["packets_per_node"] > 0


def test_same_seed_and_shards_give_the_same_metrics() -> None:
    scenario = dataclasses.replace(KAD, nodes=40, drop=0.05)
    assert simulate(scenario).metrics() == simulate(scenario).metrics()


def test_crashes_are_mirrored_on_every_shard() -> None:
    for mode in ("silent", "reset"):
        scenario = dataclasses.replace(KAD, disconnect=0.2, disconnect_mode=mode)
        result = simulate(scenario)
        assert result.crashed == round(0.2 * (60 - 3))
        assert result.live_nodes == 60 - result.crashed
        assert result.bootstrapped == result.live_nodes
        assert result.lookups_ok == result.lookups_run > 0


def test_three_shards_and_other_overlays() -> None:
    s = simulate(dataclasses.replace(KAD, nodes=30, shards=3)).summary()
    assert s["bootstrap_pct"] == 100.0
    for overlay in ("chord", "mesh"):
        s = simulate(dataclasses.replace(KAD, nodes=30, overlay=overlay)).summary()
        assert s["bootstrap_pct"] == 100.0
        assert s["send_pct"] == 100.0


def test_what_sharding_refuses() -> None:
    with pytest.raises(UsageError, match="latency"):
        dataclasses.replace(KAD, link=LinkSpec(latency=0.0))
    with pytest.raises(UsageError, match="route and broadcast"):
        dataclasses.replace(KAD, routes=5)
    with pytest.raises(UsageError, match="exceed"):
        dataclasses.replace(KAD, nodes=2, boot=1, shards=3)
    with pytest.raises(UsageError):
        dataclasses.replace(KAD, shards=0)


def test_cli_shards() -> None:
    args = ["sim", "--nodes", "60", "--boot", "3", "--lookups", "5", "--sends", "5"]
    args += ["--fast-crypto", "--memory", "off", "--shards", "2", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "peerwire.cli", *args], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)["results"][0]["summary"]
    assert summary["bootstrap_pct"] == 100.0
    assert summary["send_pct"] == 100.0
