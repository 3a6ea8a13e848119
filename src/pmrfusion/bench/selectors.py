"""Which records a table column or a claim reads: condition selectors, one value per seed.

A selector names a set of conditions; a method's value for one seed is the mean of its metric over
the selected conditions of that seed (`per_seed`). In order of precedence:

- an exact condition name: `clean`, `gaussian:10`, `missing:audio`, `train` (training diagnostics);
- `leave-one-out` / `keep-one`: the conditions of protocol `missing` with all but one modality, or
  exactly one, present (`leave-one-out@missing_mean` names another protocol); with two modalities
  both name the same conditions;
- a protocol name: every condition of that protocol (`gaussian` = the mean over its levels).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from pmrfusion.errors import PMRFusionError

GROUPS = ("leave-one-out", "keep-one")


def num_modalities(records: Iterable[dict]) -> int:
    """The number of modalities of the records' data (the most present in any record)."""
    return max((len(r["present"]) for r in records), default=0)


def matcher(selector: str, records: list[dict]):
    """A predicate on records for `selector` (see the module docstring); unknown: an error."""
    conditions = {r["condition"] for r in records}
    protocols = {r["protocol"] for r in records}
    if selector in conditions:
        return lambda r: r["condition"] == selector
    group, _, protocol = selector.partition("@")
    protocol = protocol or "missing"
    if group in GROUPS:
        m = num_modalities(records)
        size = 1 if group == "keep-one" else m - 1
        return lambda r: r["protocol"] == protocol and len(r["present"]) == size
    if selector in protocols:
        return lambda r: r["protocol"] == selector
    known = ", ".join(sorted(conditions | protocols | set(GROUPS)))
    raise PMRFusionError(f"selector '{selector}' matches no condition or protocol; known: {known}")


def per_seed(records: list[dict], selector: str, metric: str) -> dict[int, float]:
    """seed -> mean `metric` over the conditions `selector` picks, for records of one model."""
    if not records:
        return {}
    match = matcher(selector, records)
    values: dict[int, list[float]] = defaultdict(list)
    for r in records:
        if r["metric"] == metric and match(r):
            values[int(r["seed"])].append(float(r["value"]))
    return {seed: float(np.mean(v)) for seed, v in sorted(values.items())}
