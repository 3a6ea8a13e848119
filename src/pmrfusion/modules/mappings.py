"""Mappings P used inside PMR: a factory so the block is independent of the map's kind."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from pmrfusion.errors import PMRFusionError

MappingFactory = Callable[[int, int], nn.Module]

_MAPPINGS: dict[str, MappingFactory] = {"linear": lambda i, o: nn.Linear(i, o)}


def register_mapping(name: str, factory: MappingFactory) -> None:
    """Make `mapping=name` available to PMR blocks."""
    _MAPPINGS[name] = factory


def make_mapping(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    if kind not in _MAPPINGS:
        raise PMRFusionError(f"unknown PMR mapping '{kind}': use one of {', '.join(_MAPPINGS)}")
    return _MAPPINGS[kind](in_dim, out_dim)
