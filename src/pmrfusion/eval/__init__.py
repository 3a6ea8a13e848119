"""Metrics and robustness protocols."""

from pmrfusion.eval import rcml_protocol as _rcml_protocol  # noqa: F401  (registers protocol "rcml")
