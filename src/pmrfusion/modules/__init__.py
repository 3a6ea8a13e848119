"""Reusable building blocks (no training loop inside)."""

from pmrfusion.modules import text_encoder  # noqa: F401  (registers the "minilm" text embedder)
from pmrfusion.modules.heads import MLPHead
from pmrfusion.modules.reconfiguration import Reconfiguration, ReconfigurationOutput

__all__ = ["MLPHead", "Reconfiguration", "ReconfigurationOutput"]
