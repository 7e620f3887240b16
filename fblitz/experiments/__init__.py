"""Reproducible experiments: the UCI regression protocol (``python -m fblitz.experiments.uci``)."""
