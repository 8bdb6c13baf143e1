"""``peerwire sim`` restarts itself on glibc malloc with huge pages, when that helps."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from peerwire.sim._huge_pages import MARKER, TUNABLE, allocator_label, huge_page_env

SUPPORTED = {"glibc": (2, 36), "thp_mode": "madvise"}


def test_env_for_a_supported_machine() -> None:
    env = huge_page_env({}, **SUPPORTED)  # type: ignore[arg-type]
    assert env == {"PYTHONMALLOC": "malloc", "GLIBC_TUNABLES": TUNABLE, MARKER: "1"}
    kept = huge_page_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, **SUPPORTED)  # type: ignore[arg-type]
    assert kept is not None
    assert kept["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{TUNABLE}"


def test_no_env_when_it_would_change_nothing_or_is_not_ours() -> None:
    assert huge_page_env({}, glibc=(2, 34), thp_mode="madvise") is None
    assert huge_page_env({}, glibc=(2, 36), thp_mode="never") is None
    assert huge_page_env({}, glibc=(2, 36), thp_mode="always") is None
    assert huge_page_env({MARKER: "1"}, **SUPPORTED) is None  # type: ignore[arg-type]
    assert huge_page_env({"PYTHONMALLOC": "debug"}, **SUPPORTED) is None  # type: ignore[arg-type]


def test_allocator_label() -> None:
    assert allocator_label({}) == "pymalloc"
    assert allocator_label({"PYTHONMALLOC": "malloc", "GLIBC_TUNABLES": TUNABLE}) == (
        "glibc malloc, huge pages"
    )
    assert allocator_label({"PYTHONMALLOC": "malloc"}) == "PYTHONMALLOC=malloc"


def _run(*extra: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in (MARKER, "PYTHONMALLOC")}
    args = ["sim", "--overlay", "mesh", "--nodes", "10", "--boot", "3", "--lookups", "0"]
    args += ["--sends", "5", "--fast-crypto", "--json", "--memory", "off", *extra]
    done = subprocess.run(
        [sys.executable, "-m", "peerwire.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)["results"][0]
    return result


def test_cli_restarts_when_the_machine_supports_it_and_simulates_the_same() -> None:
    clean = {k: v for k, v in os.environ.items() if k not in (MARKER, "PYTHONMALLOC")}
    expected = "glibc malloc, huge pages" if huge_page_env(clean) is not None else "pymalloc"
    restarted = _run()
    plain = _run("--no-huge-pages")
    assert restarted["summary"]["allocator"] == expected  # type: ignore[index]
    assert plain["summary"]["allocator"] == "pymalloc"  # type: ignore[index]
    assert restarted["metrics"] == plain["metrics"]
