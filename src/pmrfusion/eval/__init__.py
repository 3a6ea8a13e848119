"""Metrics and robustness protocols (one registry: feature and raw implementations)."""

from pmrfusion.eval import protocols, raw_protocols  # noqa: F401  (registers every protocol)
