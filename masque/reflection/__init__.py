"""Reflection: what the worn sessions teach.

Modules (import them by name; this package imports nothing):
  scoring    scores for sessions (symbols -> numbers) and the score facts
  levels     the five levels of reflection, assembled into one report
  scope      the filters and the selection a report is drawn from
  tables     the level-specific tables
  writeback  writing a masque's scores back into its file, keeping every other byte
  export     exporting sessions (with events, scores, skills) to JSONL or Parquet
  transfer   the record shape, formats, and importing an export (admins only)
"""
