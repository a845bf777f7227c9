"""The masque file: everything about one `*.masque.yaml` or `*.mask.json` before anyone wears it.

Modules (import them by name, e.g. `from masque.masques import registry`; the package imports none of them
until a name of `__all__` below is first used):
  loader       YAML/JSON with line:col positions, size and depth limits
  schema       JSON Schema checks that point at the line
  semantics    checks beyond the schema (intent globs, knowledge pointers, ...)
  validate     validation reports per file; `load_masque`
  diagnostics  the diagnostic values and reporters `validate` returns
  dialect      the mask JSON dialect (MythaTron's format) read as a masque
  inheritance  `extends`: finding parents, merging a chain; `resolve_file` (a file with its extends applied)
  registry     refs and versions on the search path; recorded rollout stages; trusted pins on resolve
  catalog      the masks on the search path, looked up by id or name
  stages       rollout stages (draft -> canary -> live -> retired), recorded in the store
  trusted      trusted definitions: name@version bound to the content first worn
  intent       the intent policy (denied wins, default deny); intent_text and confusables normalise
  knowledge    `mcp://` knowledge pointers
Layer: above the store and trust (stages and pins ask the acting actor's ring), below the feature packages.
"""

from __future__ import annotations

from masque.lazy import lazy_exports

# The public surface, resolved on first use (importing the package stays free).
__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "resolve": "registry",
        "available": "registry",
        "Resolved": "registry",
        "validate_paths": "validate",
        "validate_files": "validate",
        "check_file": "validate",
        "Decision": "intent",
        "Policy": "intent",
        "decide": "intent",
    },
)
