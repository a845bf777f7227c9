"""Observations, mappers and feedback (seed 001, PersonaKit): facts about masques, rules that turn them
into suggestions, feedback that tunes the rules, and the derived persona profile. See docs/feedback.md."""
