"""Sync with a `masque serve` server (seed 001 §2): push the outbox, pull the server's diff."""
