"""Test-time robustness protocols: each yields named conditions (features, present mask).

Condition names: "clean"; "missing:<absent>" / "keep:<present>" / "subset:<a+b>" (protocol
"missing": absent = zero feature in original units, the papers' protocol); "missing_mean:<absent>" /
"keep_mean:<present>" / "subset_mean:<a+b>" (protocol "missing_mean": mean imputation);
"gaussian:<eps>"; "salt_pepper:<eps>"; "salt_pepper_qmf:<eps>"; "conflict:noise" /
"conflict:swap" / "conflict:all". Every condition also carries the list of modalities treated as
present.

All corruptions act on the *scaled* test features (standardised with training statistics).
Protocols that need statistics of the training rows (salt-and-pepper, conflict) receive them
as `train_range`: per-modality (min, max) of each scaled feature over the training rows, see
`PreparedData.train_range`. A protocol receives only the keyword arguments its signature names.

One registry holds both implementations of a protocol: on feature vectors (this module) and on
raw inputs (`register_protocol(name, raw=True)`, see `eval/raw_protocols.py`); `conditions(name,
prepared, seed)` picks the one for the prepared data's kind.

Naturally missing modalities (`data.presence`): every protocol acts on the data as given. The
condition "clean" is the data as given (its own absent cells marked absent, nothing added): it
keeps the name "clean" so every table, selector and claim that reads the clean condition reads
the data as given; on fully present data nothing changes. The other protocols go on top of it:
every condition's `present` is the data's presence AND the protocol's mask; the missing
protocols drop only modalities that are present (a row that a subset would leave with none keeps
its own present modalities); noise and conflicts never touch an absent cell, which keeps the
absent fill (a conflict swap that copies an absent cell copies its absence).
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from pmrfusion.data.absent import absent_values, fill_absent
from pmrfusion.data.prepared import PreparedData
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


_RAW_PROTOCOLS: dict[str, Protocol] = {}  # (test inputs, kinds, stats, seed) -> conditions


def register_protocol(name: str, raw: bool = False):
    """Register a protocol's implementation on feature vectors (or, with `raw`, on raw inputs)."""

    def deco(fn: Protocol) -> Protocol:
        (_RAW_PROTOCOLS if raw else _PROTOCOLS)[name] = fn
        return fn

    return deco


def available_protocols(raw: bool = False) -> list[str]:
    """Registered protocol names (with `raw`, those defined on raw inputs)."""
    return list(_RAW_PROTOCOLS if raw else _PROTOCOLS)


def check_protocol(protocol: str, raw: bool = False) -> None:
    """An unknown protocol (or, with `raw`, one not defined on raw inputs) is one error line."""
    if protocol not in _PROTOCOLS:
        raise PMRFusionError(f"unknown protocol '{protocol}': use one of {', '.join(_PROTOCOLS)}")
    if raw and protocol not in _RAW_PROTOCOLS:
        raise PMRFusionError(
            f"protocol '{protocol}' is not defined on raw inputs: use one of {', '.join(_RAW_PROTOCOLS)}"
        )


def conditions(
    protocol: str, test: TensorSplit | PreparedData, seed: int, train_range: TrainRange | None = None
) -> Iterator[Condition]:
    """The named conditions of `protocol` on the test split, seeded.

    `test` is prepared data of either kind (its test split, with the training statistics the
    protocol needs) or a feature-vector `TensorSplit`; then `train_range` (per-feature min/max of
    the scaled training rows) is passed to the protocols that take it (salt-and-pepper, conflict).
    """
    if isinstance(test, PreparedData):
        if test.raw:
            check_protocol(protocol, raw=True)
            return _RAW_PROTOCOLS[protocol](test.test_inputs(), test.kinds, test.stats, seed,
                                            present=test.test.present)  # fmt: skip
        test, train_range = test.test, test.train_range
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
    """The data's presence of the test rows (all True when nothing is absent)."""
    return test.presence()


def _as_given(
    test: TensorSplit, feats: dict[str, Tensor], present: Tensor | None = None
) -> dict[str, Tensor]:
    """`feats` with every absent cell (`present`, default the data's) back to the split's stored
    absent fill: a corruption never reaches an absent modality."""
    if test.present is None and present is None:
        return feats
    present = test.present if present is None else present
    out = {}
    for i, (m, x) in enumerate(feats.items()):
        fill = test.features[m] if test.absent_fill is None else test.absent_fill[m].to(x.dtype).expand_as(x)
        out[m] = torch.where(present[:, i : i + 1], x, fill)
    return out


def keep_present(subset_mask: Tensor, present: Tensor) -> Tensor:
    """(N, M) presence under a missing condition: `subset_mask` AND the data's presence; a row the
    condition would leave with none keeps its own present modalities."""
    out = subset_mask & present
    empty = ~out.any(1)
    out[empty] = present[empty]
    return out


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


def subset_name(present: tuple[str, ...], modalities: list[str], suffix: str = "") -> str:
    """ "missing:X" (X absent) / "keep:X" (only X present) / "subset:a+b"; `suffix` tags the kind."""
    absent = [m for m in modalities if m not in present]
    if not absent:
        return f"missing{suffix}:none"
    if len(absent) == 1:
        return f"missing{suffix}:{absent[0]}"
    if len(present) == 1:
        return f"keep{suffix}:{present[0]}"
    return f"subset{suffix}:" + "+".join(present)


def missing_subsets(modalities: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty proper subset when M <= 4; leave-one-out and keep-one beyond."""
    M = len(modalities)
    if M <= 4:
        return [s for k in range(1, M) for s in itertools.combinations(modalities, k)]
    loo = [tuple(m for m in modalities if m != a) for a in modalities]
    keep = [(m,) for m in modalities]
    return loo + keep


# protocol -> (absent fill, condition-name suffix); see pmrfusion.data.absent
MISSING_PROTOCOLS = {"missing": ("zero_feature", ""), "missing_mean": ("mean", "_mean")}


def _missing_conditions(test: TensorSplit, protocol: str) -> Iterator[Condition]:
    kind, suffix = MISSING_PROTOCOLS[protocol]
    fill = absent_values(kind, test.features, test.absent_fill)
    mods = test.modalities
    for subset in missing_subsets(mods):
        mask = torch.tensor([m in subset for m in mods])
        present = mask.expand(len(test), -1).clone()
        if test.present is not None:
            present = keep_present(present, test.present)
        feats = fill_absent(test.features, present, fill)
        yield Condition(protocol, subset_name(subset, mods, suffix), feats, present, list(subset))


@register_protocol("missing")
def missing(test: TensorSplit, seed: int) -> Iterator[Condition]:
    """The papers' protocol: an absent modality is a zero feature in *original* units.

    After standardisation that is (0 - mean) / std of the training scaler (`test.absent_fill`).
    Conditions "missing:X" (X absent), "keep:X" (only X present), "subset:a+b"; the `present`
    mask says which modalities are present.
    """
    yield from _missing_conditions(test, "missing")


@register_protocol("missing_mean")
def missing_mean(test: TensorSplit, seed: int) -> Iterator[Condition]:
    """Mean imputation: an absent modality is zero in *scaled* space (the training mean).

    Conditions "missing_mean:X", "keep_mean:X", "subset_mean:a+b"; `present` as for "missing".
    """
    yield from _missing_conditions(test, "missing_mean")


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
        feats = _as_given(test, feats)
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
    """Salt-and-pepper noise of level eps, fixed-count variant (see `salt_pepper_qmf` for QMF's code).

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
        feats = _as_given(test, feats)
        yield Condition(
            "salt_pepper", f"salt_pepper:{_eps_label(eps)}", feats, _all_present(test), test.modalities
        )


SALT_PEPPER_QMF_DENSITY = 0.1  # QMF code: AddSaltPepperNoise(density=0.1, p=eps/10)
SALT_PEPPER_QMF_GATE = 0.5  # QMF code: wrapped in RandomApply(p=0.5)


def salt_pepper_qmf_corrupt(
    features: dict[str, Tensor],
    train_range: TrainRange,
    eps: float,
    gen: torch.Generator,
    present: Tensor | None = None,
    density: float = SALT_PEPPER_QMF_DENSITY,
    gate: float = SALT_PEPPER_QMF_GATE,
) -> tuple[dict[str, Tensor], Tensor]:
    """(corrupted features, (N, M) bool cells hit): QMF-code salt-and-pepper, see `salt_pepper_qmf`.

    Cells whose modality is absent (`present` False) are never corrupted.
    """
    if not 0 <= eps <= 10:
        raise PMRFusionError(f"salt_pepper_qmf eps must be in [0, 10], got {eps}")
    x0 = next(iter(features.values()))
    cells = corrupt_mask(len(x0), len(features), gen, p=gate * eps / 10)
    if present is not None:
        cells = cells & present.bool()
    out = {}
    for i, (m, x) in enumerate(features.items()):
        lo, hi = train_range[m]
        u = torch.rand(x.shape, generator=gen)
        hit = cells[:, i : i + 1]
        pepper = (u < density / 2) & hit
        salt = (u >= density / 2) & (u < density) & hit
        y = torch.where(pepper, lo.expand_as(x).to(x.dtype), x)
        out[m] = torch.where(salt, hi.expand_as(x).to(x.dtype), y)
    return out, cells


@register_protocol("salt_pepper_qmf")
def salt_pepper_qmf(
    test: TensorSplit, seed: int, train_range: TrainRange | None = None, eps_values=SALT_PEPPER_EPS
) -> Iterator[Condition]:
    """Salt-and-pepper as the official QMF code does it (published-era commit d7f31dd).

    A (sample, modality) cell is corrupted with probability 0.5 * eps/10 (the code's
    RandomApply(p=0.5) around AddSaltPepperNoise(p=eps/10)). In a corrupted cell each entry
    independently becomes pepper (the feature's training minimum) with probability 0.05 and salt
    (training maximum) with probability 0.05: density fixed at 0.1 (the code: pepper 0, salt 255
    on pixels). So eps sets how *often* a modality is hit, not how much of it.
    """
    rng = _require_range("salt_pepper_qmf", test, train_range)
    present = _all_present(test)
    for eps in eps_values:
        gen = generator(seed, 4, int(eps * 1000))
        feats, _ = salt_pepper_qmf_corrupt(test.features, rng, eps, gen, present)
        name = f"salt_pepper_qmf:{_eps_label(eps)}"
        yield Condition("salt_pepper_qmf", name, feats, present, test.modalities)


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
    if test.present is None:
        yield Condition("conflict", "conflict:noise", noisy, present, mods)
        yield Condition("conflict", "conflict:swap", swapped, present, mods)
        yield Condition("conflict", "conflict:all", both, present, mods)
        return
    moved = present.clone()  # a swapped-in cell brings its presence along
    for i in range(len(mods)):
        sel = plan.swap_view == i
        moved[plan.swap_rows[sel], i] = present[plan.swap_source[sel], i]
    moved[~moved.any(1)] = present[~moved.any(1)]
    yield Condition("conflict", "conflict:noise", _as_given(test, noisy), present, mods)
    yield Condition("conflict", "conflict:swap", _as_given(test, swapped, moved), moved, mods)
    yield Condition("conflict", "conflict:all", _as_given(test, both, moved), moved, mods)
