"""Lazy package surfaces: a package's `__init__` names its public API without importing it.

    __all__, __getattr__ = lazy_exports(__name__, {"assume": "lifecycle", "Session": "model"})

`masque.sessions.assume` then imports `masque.sessions.lifecycle` on first use (PEP 562), so importing
a package stays free (a test holds every `__init__` to that) while its `__init__` is where a reader
finds what the package offers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """(`__all__`, `__getattr__`) for `package`, whose public `names` live in the given submodules."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # resolved once; later lookups never reach this function
        return value

    return sorted(names), __getattr__
