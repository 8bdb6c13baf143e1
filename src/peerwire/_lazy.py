"""Package attributes imported on first use (PEP 562 module ``__getattr__``).

``import peerwire`` and the CLI must stay quick, so packages whose heavy parts
are rarely needed (the Chord and Kademlia implementations, the simulator)
export those names lazily: the submodule is imported the first time one of
its names is read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: name -> ``package.<where[name]>.<name>``."""

    def __getattr__(name: str) -> Any:  # becomes the package module's __getattr__
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__
