"""Reflection: scores, the five levels of reflection, their tables, write-back to the masque file, export/import."""
