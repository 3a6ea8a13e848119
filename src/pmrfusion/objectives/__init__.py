"""Loss terms beside the task loss."""

from pmrfusion.objectives.preservation import (
    preservation_loss,
    relaxed_preservation,
    strict_preservation,
)

__all__ = ["preservation_loss", "relaxed_preservation", "strict_preservation"]
