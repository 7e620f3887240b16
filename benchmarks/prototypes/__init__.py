"""Investigations behind the notes in ``benchmarks/README.md`` (not part of the harness)."""
