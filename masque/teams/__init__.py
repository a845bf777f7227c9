"""Teams: several masques worn together under one team id and one intent (seed 003).

Modules (import them by name; this package imports nothing):
  model  Team / Member values, and reading and writing their rows (the one writer of teams tables)
"""
