"""A rough cost of one cell, to start the slowest cells first (results do not depend on it).

cost = method family weight x dataset size (samples x summed input dims). The weights are
relative guesses, not measurements: attention and mixture-of-experts fusions 4 / 3, the
two-stage and evidential methods 2, the rest 1; a PMR wrapper (`rg-`/`sg-`) doubles its base.
Ordering the queue longest-first keeps a parallel run from ending on one slow straggler.
"""

from __future__ import annotations

FAMILY_WEIGHT = {"perceiver": 4.0, "mbt": 4.0, "moe": 3.0, "umoe": 3.0, "srht": 2.0, "cmmp": 2.0,
                 "misa": 2.0, "drfuse": 2.0, "pdf": 2.0, "qmf": 2.0, "iid": 2.0}  # fmt: skip
PMR_PREFIXES = ("rg-", "sg-")


def method_weight(method: str) -> float:
    """The relative cost of `method` (a variant `name[k=v]` costs what `name` does)."""
    name = method.split("[", 1)[0]
    factor = 1.0
    if name.startswith(PMR_PREFIXES):
        name, factor = name[3:], 2.0
    return factor * FAMILY_WEIGHT.get(name.split("-", 1)[0], 1.0)


def cell_cost(method: str, num_samples: int, dims: dict[str, int]) -> float:
    """Estimated cost of fitting `method` on a dataset of `num_samples` rows of `dims`."""
    return method_weight(method) * max(1, num_samples) * max(1, sum(dims.values()))


__all__ = ["FAMILY_WEIGHT", "cell_cost", "method_weight"]
