"""Reflection: what the worn sessions teach.

Modules (the package imports none of them until a name of `__all__` below is first used):
  scoring    scores for sessions (symbols -> numbers) and the score facts
  levels     the five levels of reflection, assembled into one report
  scope      the filters and the selection a report is drawn from
  tables     the level-specific tables
  writeback  writing a masque's scores back into its file, keeping every other byte
  export     exporting sessions (with events, scores, skills) to JSONL or Parquet
  transfer   the record shape, formats, and importing an export (admins only)
"""

from __future__ import annotations

from masque.lazy import lazy_exports

# The public surface, resolved on first use (importing the package stays free).
__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "report": "levels",
        "build_report": "levels",
        "Report": "levels",
        "Filters": "levels",
        "Selection": "levels",
        "add_score": "scoring",
        "score_session": "scoring",
        "session_scores": "scoring",
        "export_sessions": "export",
        "import_sessions": "transfer",
        "Format": "transfer",
        "export_partitioned": "partitioned",
        "report_from_files": "partitioned",
        "write_back": "writeback",
    },
)
