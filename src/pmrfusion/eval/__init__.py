"""Metrics and robustness protocols."""
