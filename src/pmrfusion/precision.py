"""Numerical precision of training: `32` (float32), `bf16` (bfloat16 autocast), `16-mixed` (float16
autocast with a gradient scaler).

`autocast(device, precision)` wraps a training forward pass and its losses; `float32` marks the
computations that must stay in float32 under autocast (evidential / Dirichlet terms, Sinkhorn,
the SRHT transform, PMR's preservation loss): with autocast off (the default, `32`) they run
unchanged, so float32 results are bit for bit what they were.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from torch import Tensor

from pmrfusion.errors import PMRFusionError

PRECISIONS = ("32", "bf16", "16-mixed")
_DTYPES = {"bf16": torch.bfloat16, "16-mixed": torch.float16}
_DEVICE_TYPES = ("cpu", "cuda", "mps")
F = TypeVar("F", bound=Callable[..., Any])


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise PMRFusionError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Autocast to the precision's dtype on `device` (nothing for `32`)."""
    check_precision(precision)
    if precision == "32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=_DTYPES[precision]):
        yield


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A gradient scaler for float16 training (None otherwise)."""
    return torch.amp.GradScaler(device.type) if precision == "16-mixed" else None


def _autocasting() -> list[str]:
    return [d for d in _DEVICE_TYPES if torch.is_autocast_enabled(d)]


def _to_float32(value: Any) -> Any:
    if isinstance(value, Tensor) and value.is_floating_point() and value.dtype != torch.float32:
        return value.float()
    if isinstance(value, (list, tuple)):
        return type(value)(_to_float32(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_float32(v) for k, v in value.items()}
    return value


def float32(fn: F) -> F:
    """Run `fn` in float32 (its tensor arguments cast, autocast off) when autocast is on."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        active = _autocasting()
        if not active:
            return fn(*args, **kwargs)
        with contextlib.ExitStack() as stack:
            for device_type in active:
                stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
            return fn(*_to_float32(args), **_to_float32(kwargs))

    return wrapper  # type: ignore[return-value]


__all__ = ["PRECISIONS", "autocast", "check_precision", "float32", "grad_scaler"]
