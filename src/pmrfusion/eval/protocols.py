"""Test-time robustness protocols: each yields named conditions (features, present mask).

Condition names: "clean"; "missing:<absent>" / "keep:<present>" / "subset:<a+b>";
"gaussian:<eps>". Every condition also carries the list of modalities treated as present.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from pmrfusion.data.tensors import TensorSplit
from pmrfusion.errors import PMRFusionError


@dataclass
class Condition:
    protocol: str
    name: str
    features: dict[str, Tensor]
    present: Tensor  # (N, M) bool
    present_modalities: list[str]


Protocol = Callable[[TensorSplit, int], Iterator[Condition]]
_PROTOCOLS: dict[str, Protocol] = {}
GAUSSIAN_EPS = (0.0, 1.0, 5.0, 10.0)


def register_protocol(name: str):
    def deco(fn: Protocol) -> Protocol:
        _PROTOCOLS[name] = fn
        return fn

    return deco


def available_protocols() -> list[str]:
    return list(_PROTOCOLS)


def check_protocol(protocol: str) -> None:
    if protocol not in _PROTOCOLS:
        raise PMRFusionError(f"unknown protocol '{protocol}': use one of {', '.join(_PROTOCOLS)}")


def conditions(protocol: str, test: TensorSplit, seed: int) -> Iterator[Condition]:
    """The named conditions of `protocol` on the test split, seeded."""
    check_protocol(protocol)
    return _PROTOCOLS[protocol](test, seed)


def _all_present(test: TensorSplit) -> Tensor:
    return torch.ones(len(test), len(test.features), dtype=torch.bool)


def _eps_label(eps: float) -> str:
    return f"{eps:g}"


def generator(seed: int, *salt: int) -> torch.Generator:
    """A torch.Generator keyed by (seed, salt...): reproducible per condition."""
    key = seed
    for s in salt:
        key = (key * 1_000_003 + int(s)) % (2**63 - 1)
    return torch.Generator().manual_seed(key)


@register_protocol("clean")
def clean(test: TensorSplit, seed: int) -> Iterator[Condition]:
    yield Condition("clean", "clean", test.features, _all_present(test), test.modalities)


def subset_name(present: tuple[str, ...], modalities: list[str]) -> str:
    absent = [m for m in modalities if m not in present]
    if not absent:
        return "missing:none"
    if len(absent) == 1:
        return f"missing:{absent[0]}"
    if len(present) == 1:
        return f"keep:{present[0]}"
    return "subset:" + "+".join(present)


def missing_subsets(modalities: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty proper subset when M <= 4; leave-one-out and keep-one beyond."""
    M = len(modalities)
    if M <= 4:
        return [s for k in range(1, M) for s in itertools.combinations(modalities, k)]
    loo = [tuple(m for m in modalities if m != a) for a in modalities]
    keep = [(m,) for m in modalities]
    return loo + keep


@register_protocol("missing")
def missing(test: TensorSplit, seed: int) -> Iterator[Condition]:
    """Absent modalities are zeroed (the papers' protocol); the mask says which are present."""
    mods = test.modalities
    for subset in missing_subsets(mods):
        mask = torch.tensor([m in subset for m in mods])
        present = mask.expand(len(test), -1).clone()
        feats = {m: x if m in subset else torch.zeros_like(x) for m, x in test.features.items()}
        yield Condition("missing", subset_name(subset, mods), feats, present, list(subset))


def corrupt_mask(n: int, num_modalities: int, gen: torch.Generator, p: float = 0.5) -> Tensor:
    """(N, M) bool: which (sample, modality) cells are corrupted, each with probability p."""
    return torch.rand(n, num_modalities, generator=gen) < p


@register_protocol("gaussian")
def gaussian(test: TensorSplit, seed: int, eps_values=GAUSSIAN_EPS) -> Iterator[Condition]:
    """Each modality of each sample gets N(0, eps) noise (variance eps) with p = 0.5."""
    n = len(test)
    for eps in eps_values:
        gen = generator(seed, 1, int(eps * 1000))
        mask = corrupt_mask(n, len(test.features), gen)
        feats = {}
        for i, (m, x) in enumerate(test.features.items()):
            noise = torch.randn(x.shape, generator=gen) * (eps**0.5)
            feats[m] = x + noise * mask[:, i : i + 1]
        yield Condition("gaussian", f"gaussian:{_eps_label(eps)}", feats, _all_present(test), test.modalities)
