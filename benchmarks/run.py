"""Run the peerwire benchmarks: ``python benchmarks/run.py --quick`` (same as ``peerwire bench``).

A thin wrapper over :mod:`peerwire.bench.report`, so the benchmark works the
same from a checkout and from an installed peerwire. See benchmarks/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from peerwire.bench.report import main
except ImportError:  # a checkout without peerwire installed: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from peerwire.bench.report import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
