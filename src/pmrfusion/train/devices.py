"""Device names: `auto` (CUDA when present, else CPU), `cpu`, `cuda`, `cuda:N`, `mps`."""

from __future__ import annotations

import re

import torch

from pmrfusion.errors import PMRFusionError

DEVICE_HELP = "auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps"


def resolve_device(name: str) -> torch.device:
    """The torch device `name` stands for; one error line when it is malformed or not on this machine."""
    if not isinstance(name, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", name):
        raise PMRFusionError(f"--device must be {DEVICE_HELP}, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PMRFusionError(f"--device {name}: CUDA is not available on this machine (use cpu or auto)")
        index = int(name.split(":")[1]) if ":" in name else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise PMRFusionError(f"--device {name}: this machine has {count} CUDA device(s)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise PMRFusionError("--device mps: MPS is not available on this machine (use cpu or auto)")
    return torch.device(name)


__all__ = ["DEVICE_HELP", "resolve_device"]
