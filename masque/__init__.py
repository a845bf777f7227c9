"""Masque: AssumeRole for AI agents.

The public Python API is re-exported lazily so that `import masque` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access (PEP 562).
_LAZY = {
    "MasqueError": "masque.errors",
    "Masque": "masque.api",  # the base class of code-defined masques (seed 004's `class Homelab(Masque)`)
    "ModelMasque": "masque.api",
    "load": "masque.api",
    "load_code_masque": "masque.api",
    "assume": "masque.api",
    "release": "masque.api",
    "revoke": "masque.api",
    "check": "masque.api",
    "verify": "masque.api",
    "validate_paths": "masque.masques.validate",
    "load_masque": "masque.masques.validate",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'masque' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
