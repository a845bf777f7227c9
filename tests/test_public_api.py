"""`import masque` is cheap, and its names lead to the documented API."""

from __future__ import annotations

import subprocess
import sys


def test_import_masque_loads_nothing_heavy() -> None:
    heavy = ("duckdb", "lancedb", "lance", "pyarrow", "openai", "typer")
    code = f"import sys, masque; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_names_resolve() -> None:
    import masque
    from masque import api

    assert masque.Masque is api.Masque  # what code-defined masques subclass
    for name in masque.__all__:
        assert getattr(masque, name) is not None
