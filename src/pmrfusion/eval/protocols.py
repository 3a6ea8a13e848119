"""Test-time robustness protocols: each yields named conditions (features, present mask).

Condition names: "clean"; "missing:<absent>" / "keep:<present>" / "subset:<a+b>";
"gaussian:<eps>"; "salt_pepper:<eps>"; "conflict:noise" / "conflict:swap" / "conflict:all".
Every condition also carries the list of modalities treated as present.

All corruptions act on the *scaled* test features (standardised with training statistics).
Protocols that need statistics of the training rows (salt-and-pepper, conflict) receive them
as `train_range`: per-modality (min, max) of each scaled feature over the training rows, see
`PreparedData.train_range`. A protocol receives only the keyword arguments its signature names.
"""

from __future__ import annotations

import inspect
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


Protocol = Callable[..., Iterator[Condition]]  # (test, seed, **context) -> conditions
_PROTOCOLS: dict[str, Protocol] = {}
GAUSSIAN_EPS = (0.0, 1.0, 5.0, 10.0)
SALT_PEPPER_EPS = (1.0, 5.0, 10.0)
CONFLICT_NOISE_FRACTION = 0.1
CONFLICT_SWAP_FRACTION = 0.4
CONFLICT_SIGMA = 0.5  # RCML's sigma, relative to each feature's training range (see `conflict`)
TrainRange = dict[str, tuple[Tensor, Tensor]]  # modality -> (min, max) per feature, training rows


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


def conditions(
    protocol: str, test: TensorSplit, seed: int, train_range: TrainRange | None = None
) -> Iterator[Condition]:
    """The named conditions of `protocol` on the test split, seeded.

    `train_range` (per-feature min/max of the scaled training rows) is passed to the
    protocols that take it; salt-and-pepper and conflict need it.
    """
    check_protocol(protocol)
    fn = _PROTOCOLS[protocol]
    context = {"train_range": train_range}
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in context.items() if k in params}
    return fn(test, seed, **kwargs)


def feature_range(split: TensorSplit) -> TrainRange:
    """Per-feature (min, max) of every modality of `split` (use the training split)."""
    if len(split) == 0:
        raise PMRFusionError("cannot take feature ranges of an empty split")
    return {m: (x.amin(0), x.amax(0)) for m, x in split.features.items()}


def _require_range(protocol: str, test: TensorSplit, train_range: TrainRange | None) -> TrainRange:
    if train_range is None:
        raise PMRFusionError(
            f"protocol '{protocol}' needs the training min/max of every feature (train_range)"
        )
    missing = [m for m in test.modalities if m not in train_range]
    if missing:
        raise PMRFusionError(f"protocol '{protocol}': train_range lacks modalities {missing}")
    for m, x in test.features.items():
        lo, hi = train_range[m]
        if lo.shape != x.shape[1:] or hi.shape != x.shape[1:]:
            raise PMRFusionError(
                f"protocol '{protocol}': train_range of '{m}' has shape {tuple(lo.shape)}, "
                f"features have {tuple(x.shape[1:])}"
            )
    return train_range


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


def salt_pepper_mask(n: int, d: int, fraction: float, gen: torch.Generator) -> Tensor:
    """(n, d) bool with exactly round(fraction * d) True entries per row, positions uniform."""
    k = int(round(fraction * d))
    ranks = torch.rand(n, d, generator=gen).argsort(dim=1).argsort(dim=1)
    return ranks < k


@register_protocol("salt_pepper")
def salt_pepper(
    test: TensorSplit, seed: int, train_range: TrainRange | None = None, eps_values=SALT_PEPPER_EPS
) -> Iterator[Condition]:
    """Salt-and-pepper noise of level eps (QMF's protocol on feature vectors).

    Each (sample, modality) cell is corrupted independently with p = 0.5 (as for
    "gaussian"). In a corrupted cell exactly round(eps/10 * d_m) of its d_m entries, chosen
    uniformly, are set to the training maximum ("salt") or minimum ("pepper") of that
    feature, salt or pepper with probability 1/2 each. eps = 10 replaces every entry.
    """
    rng = _require_range("salt_pepper", test, train_range)
    n = len(test)
    for eps in eps_values:
        if not 0 <= eps <= 10:
            raise PMRFusionError(f"salt_pepper eps must be in [0, 10], got {eps}")
        gen = generator(seed, 2, int(eps * 1000))
        cells = corrupt_mask(n, len(test.features), gen)
        feats = {}
        for i, (m, x) in enumerate(test.features.items()):
            lo, hi = rng[m]
            hit = salt_pepper_mask(n, x.shape[1], eps / 10, gen) & cells[:, i : i + 1]
            salt = torch.rand(x.shape, generator=gen) < 0.5
            value = torch.where(salt, hi.expand_as(x), lo.expand_as(x)).to(x.dtype)
            feats[m] = torch.where(hit, value, x)
        yield Condition(
            "salt_pepper", f"salt_pepper:{_eps_label(eps)}", feats, _all_present(test), test.modalities
        )


@dataclass
class ConflictPlan:
    """Which test rows the conflict protocol touches, and how (all indices are positions)."""

    noise_rows: Tensor  # rows that get Gaussian noise on one view
    noise_view: Tensor  # the view index for each noise row
    swap_rows: Tensor  # rows that get one view from a sample of another class
    swap_view: Tensor
    swap_source: Tensor  # the row whose view is copied in


def conflict_plan(
    labels: Tensor,
    num_views: int,
    gen: torch.Generator,
    noise_fraction: float = CONFLICT_NOISE_FRACTION,
    swap_fraction: float = CONFLICT_SWAP_FRACTION,
) -> ConflictPlan:
    """Disjoint random sets of round(0.1 N) noise rows and round(0.4 N) swap rows, seeded.

    Each chosen row gets one view, uniform over views. A swap row takes that view from a test
    row drawn uniformly among the rows of a *different* class (a row whose class is the only
    one in the split is left unswapped: there is no other class to take a view from).
    """
    n = len(labels)
    perm = torch.randperm(n, generator=gen)
    k_noise = int(round(noise_fraction * n))
    k_swap = min(int(round(swap_fraction * n)), n - k_noise)
    noise_rows = perm[:k_noise].sort().values
    swap_rows = perm[k_noise : k_noise + k_swap].sort().values
    noise_view = torch.randint(num_views, (k_noise,), generator=gen)
    swap_view = torch.randint(num_views, (k_swap,), generator=gen)
    u = torch.rand(k_swap, generator=gen, dtype=torch.float64)
    sources = torch.empty(k_swap, dtype=torch.long)
    keep = torch.ones(k_swap, dtype=torch.bool)
    for j, r in enumerate(swap_rows.tolist()):
        others = torch.nonzero(labels != labels[r]).reshape(-1)
        if len(others) == 0:
            keep[j] = False
            sources[j] = r
            continue
        sources[j] = others[min(int(u[j] * len(others)), len(others) - 1)]
    return ConflictPlan(noise_rows, noise_view, swap_rows[keep], swap_view[keep], sources[keep])


@register_protocol("conflict")
def conflict(
    test: TensorSplit,
    seed: int,
    train_range: TrainRange | None = None,
    sigma: float = CONFLICT_SIGMA,
) -> Iterator[Condition]:
    """RCML-style conflictive test set (Xu et al., AAAI 2024), on a copy of the test split.

    Exact choices (RCML's code differs where noted, see REFERENCE_RESULTS.md):
    - 10% of test rows (round(0.1 N)) get Gaussian noise on one view chosen uniformly
      (RCML: a random subset of randint(V) views, possibly none). The noise is
      N(0, (sigma * r_j)^2) per feature j with sigma = 0.5 and r_j the training range
      (max - min) of feature j: RCML adds N(0, 0.5^2) to features min-max scaled to [0, 1],
      and this is the same noise expressed in our standardised units.
    - A disjoint 40% (round(0.4 N)) get one view, chosen uniformly, replaced by that view
      of a test row drawn uniformly among the rows of another class (RCML: always the first
      row, in dataset order, of class (y + 1) mod K).
    - Seeded by (seed, protocol); the row sets do not depend on the model.
    Conditions: "conflict:noise" (the noise part only), "conflict:swap" (the swaps only)
    and "conflict:all" (both: RCML's conflictive test set).
    """
    rng = _require_range("conflict", test, train_range)
    mods = test.modalities
    gen = generator(seed, 3)
    plan = conflict_plan(test.labels, len(mods), gen)
    noisy = {m: x.clone() for m, x in test.features.items()}
    for i, m in enumerate(mods):
        rows = plan.noise_rows[plan.noise_view == i]
        lo, hi = rng[m]
        x = noisy[m]
        noise = torch.randn((len(rows), x.shape[1]), generator=gen) * (sigma * (hi - lo))
        x[rows] = x[rows] + noise.to(x.dtype)
    swapped = {m: x.clone() for m, x in test.features.items()}
    both = {m: x.clone() for m, x in noisy.items()}
    for i, m in enumerate(mods):
        sel = plan.swap_view == i
        rows, src = plan.swap_rows[sel], plan.swap_source[sel]
        swapped[m][rows] = test.features[m][src]
        both[m][rows] = test.features[m][src]
    present = _all_present(test)
    yield Condition("conflict", "conflict:noise", noisy, present, mods)
    yield Condition("conflict", "conflict:swap", swapped, present, mods)
    yield Condition("conflict", "conflict:all", both, present, mods)
