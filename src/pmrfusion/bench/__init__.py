"""Experiments: the one runner, its tasks, the suite, records and reports."""

from pmrfusion.bench import (
    rcml,  # noqa: F401  (registers the "rcml" task)
    retrieval,  # noqa: F401  (registers the "retrieval" task)
)
