"""Reusable building blocks (no training loop inside)."""

from pmrfusion.modules.heads import MLPHead
from pmrfusion.modules.reconfiguration import Reconfiguration, ReconfigurationOutput

__all__ = ["MLPHead", "Reconfiguration", "ReconfigurationOutput"]
