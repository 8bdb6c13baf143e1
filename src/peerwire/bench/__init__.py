"""``peerwire bench``: peerwire measured side by side with raw asyncio and py-libp2p.

Kept import-free on purpose: the worker processes import ``peerwire.bench``
submodules and must not pay for rich or the runner at start-up (first-ping
measures that start-up). Use :func:`peerwire.bench.runner.run_bench` or
:func:`peerwire.bench.report.main`.
"""
