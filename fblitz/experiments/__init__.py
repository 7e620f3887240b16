"""Reproducible experiments: the UCI regression protocol on any table (``python -m fblitz.experiments.uci``)."""
