"""Verdicts computed from records: each paper claim as a paired comparison across seeds.

A claims file (TOML) holds one `[[claim]]` per claim of the papers:

    [[claim]]
    id = "pmr-cub-keep-one"
    paper = "PMR"                         # and where: section / table
    where = "Table 3"
    text = "PMR keeps more accuracy than its back-end when one modality is left (CUB)"
    experiment = "suite"                  # whose records are read (experiments/<name>.toml)
    grid = "cub"
    a = "sg-concat"                       # claimed better ...
    b = "concat"                          # ... than this
    selector = "keep-one"                 # bench.selectors
    metric = "accuracy"
    direction = "greater"                 # a > b ("less": a < b, e.g. MAE)
    engaged = { method = "sg-concat", metric = "preserve", falls = true }   # optional

The verdict (`judge`) pairs a and b by seed and takes the paired t interval of mean(a - b)
(`eval.paired`, 95%): **holds** when the whole interval lies on the claimed side of 0, **fails**
when it lies wholly on the other side, **inconclusive** when it contains 0. Before that, the
mechanism check: with `engaged`, the named loss term must fall from the first to the best epoch
(`<metric>@first` > `<metric>@best`, training diagnostics of `bench.experiment_run`) in every seed
of that method, else the verdict is **not engaged**. Fewer than 2 paired seeds: **too few seeds**.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pmrfusion.bench.selectors import per_seed
from pmrfusion.errors import PMRFusionError, check_distinct
from pmrfusion.eval.paired import PairedResult, paired_difference
from pmrfusion.paths import read_toml

CLAIM_KEYS = {"id", "paper", "where", "text", "experiment", "grid", "a", "b", "selector", "metric",
              "direction", "engaged"}  # fmt: skip
REQUIRED = ("id", "paper", "text", "experiment", "grid", "a", "b", "selector", "metric", "direction")
DIRECTIONS = ("greater", "less")
VERDICTS = ("holds", "fails", "inconclusive", "not engaged", "too few seeds", "not run")


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    text: str
    experiment: str
    grid: str
    a: str
    b: str
    selector: str
    metric: str
    direction: str
    where: str = ""
    engaged_method: str = ""
    engaged_metric: str = ""


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    verdict: str
    result: PairedResult | None
    note: str = ""


def load_claims(path: str | Path) -> list[Claim]:
    """The claims of a claims file, checked (unknown keys, directions and duplicate ids fail)."""
    path = Path(path)
    raw = read_toml(path, "claims file")
    stray = sorted(set(raw) - {"claim"})
    if stray:
        raise PMRFusionError(f"{path}: unknown top-level key(s) {stray}; claims go in [[claim]] tables")
    claims = []
    for i, c in enumerate(raw.get("claim", [])):
        where = f"{path} claim {i + 1}"
        bad = sorted(set(c) - CLAIM_KEYS)
        if bad:
            raise PMRFusionError(f"{where}: unknown key(s) {bad}")
        missing = [k for k in REQUIRED if k not in c]
        if missing:
            raise PMRFusionError(f"{where}: lacks {missing}")
        if c["direction"] not in DIRECTIONS:
            raise PMRFusionError(f"{where}: direction must be one of {DIRECTIONS}, got {c['direction']!r}")
        engaged = c.get("engaged", {})
        if set(engaged) - {"method", "metric", "falls"} or (
            engaged and engaged.get("falls", True) is not True
        ):
            raise PMRFusionError(f"{where}: engaged takes method, metric and falls = true")
        claims.append(Claim(
            **{k: str(c[k]) for k in REQUIRED}, where=str(c.get("where", "")),
            engaged_method=str(engaged.get("method", "")), engaged_metric=str(engaged.get("metric", "")),
        ))  # fmt: skip
    check_distinct([c.id for c in claims], "claim ids")
    return claims


def _engaged(claim: Claim, records: list[dict]) -> tuple[bool, str]:
    mine = [r for r in records if r["method"] == claim.engaged_method and r["protocol"] == "training"]
    first = per_seed(mine, "train", f"{claim.engaged_metric}@first")
    best = per_seed(mine, "train", f"{claim.engaged_metric}@best")
    if not first:
        return False, f"no {claim.engaged_metric} diagnostics for {claim.engaged_method}"
    falls = [s for s in first if s in best and best[s] < first[s]]
    note = f"{claim.engaged_metric} fell in {len(falls)} of {len(first)} seeds"
    return len(falls) == len(first), note


def judge(claim: Claim, records: list[dict], level: float = 0.95) -> Verdict:
    """The verdict of `claim` on `records` (of its experiment and grid; see the module docstring)."""
    grid = [r for r in records if r.get("grid") == claim.grid]
    a = per_seed([r for r in grid if r["method"] == claim.a], claim.selector, claim.metric)
    b = per_seed([r for r in grid if r["method"] == claim.b], claim.selector, claim.metric)
    if not a or not b:
        which = [m for m, v in ((claim.a, a), (claim.b, b)) if not v]
        return Verdict(claim, "not run", None, f"no records of {', '.join(which)}")
    if claim.engaged_method:
        ok, note = _engaged(claim, grid)
        if not ok:
            return Verdict(claim, "not engaged", None, note)
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return Verdict(claim, "too few seeds", None, f"{len(seeds)} paired seed(s)")
    result = paired_difference([a[s] for s in seeds], [b[s] for s in seeds], level)
    low, high = (result.ci_low, result.ci_high)
    if claim.direction == "less":
        low, high = -high, -low
    verdict = "holds" if low > 0 else "fails" if high < 0 else "inconclusive"
    note = ""
    if claim.engaged_method:
        note = _engaged(claim, grid)[1]
    return Verdict(claim, verdict, result, note)
