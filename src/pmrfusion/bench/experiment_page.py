"""An experiment's page (README.md of its folder), generated from the file and the records alone.

The page gives the command that regenerates the folder, the grids (settings, cells, compute),
each table of the file (mean ± sample std over seeds, n stated), the verdicts of the claims that
read this experiment, and the provenance of the cells (code, data, software, device). Only cells
made with the file's current settings and data are read; a table whose cells come from different
code versions is refused unless the file says why they may be pooled (`pool_code_versions`), and
the page then says so.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pmrfusion.bench.claims import Verdict, judge, load_claims
from pmrfusion.bench.experiment import Experiment, Table, load_experiment
from pmrfusion.bench.experiment_store import CellKey, ExperimentStore, StoredCell
from pmrfusion.bench.provenance import config_hash
from pmrfusion.bench.selectors import per_seed
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.metrics import sample_std
from pmrfusion.paths import atomic_write_text

PAGE_FILE = "README.md"


def current_cells(exp: Experiment, store: ExperimentStore) -> dict[CellKey, StoredCell]:
    """The stored cells made with the experiment's current settings (config hash)."""
    wanted: dict[tuple[str, str, int], str] = {}
    for g in exp.grids:
        for m in g.spec.methods:
            h = config_hash(g.cell_settings(m))
            for s in g.spec.seeds:
                wanted[(g.id, m, s)] = h
    out = {}
    for key, cell in store.cells.items():
        grid_id, _, method, seed = key
        if (
            method.startswith("baseline:")
            or wanted.get((grid_id, method, seed)) == cell.provenance.config_hash
        ):
            out[key] = cell
    return out


def _check_pooling(exp: Experiment, cells: dict[CellKey, StoredCell], what: str) -> None:
    versions = {c.provenance.source_hash for c in cells.values()}
    if len(versions) > 1 and not exp.pool_code_versions:
        raise PMRFusionError(
            f"{what} would pool cells of {len(versions)} code versions ({', '.join(sorted(versions))}): "
            f"run `pmrfusion run {exp.path} --resume` to re-run the older cells, or give the file a "
            "pool_code_versions reason"
        )


def mean_std(values: Sequence[float], scale: float, digits: int, expected: int) -> str:
    """'mean ± std' of `scale * values` (sample std); fewer seeds than `expected` add '(n = k of N)',
    one value has no spread: 'value (n = 1 of N)'; no value: '–'."""
    v = scale * np.asarray(values, dtype=float)
    if not v.size:
        return "–"
    tail = f" (n = {v.size} of {expected})" if v.size < expected else ""
    if v.size == 1:
        return f"{v[0]:.{digits}f}{tail or ' (n = 1)'}"
    return f"{v.mean():.{digits}f} ± {sample_std(v):.{digits}f}{tail}"


def render_table(
    exp: Experiment, table: Table, store: ExperimentStore, cells: dict[CellKey, StoredCell]
) -> str:
    """One table of the page: rows (grid, method), columns the table's selectors."""
    mine = {k: c for k, c in cells.items() if k[0] in table.grids}
    _check_pooling(exp, mine, f"table '{table.title}'")
    by_model: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for key in sorted(mine):
        by_model[(key[0], key[2])].extend(store.records[key])
    out = io.StringIO()
    out.write(f"### {table.title}\n\n")
    if table.note:
        out.write(table.note.strip() + "\n\n")
    scale = "" if table.scale == 1 else f" × {table.scale:g}"
    seeds = {g.id: len(g.spec.seeds) for g in exp.grids}
    out.write(f"`{table.metric}`{scale}: mean ± sample std (ddof = 1) over the grid's seeds; a cell with "
              "fewer seeds says n.\n\n")  # fmt: skip
    out.write("| grid | method | " + " | ".join(table.columns) + " |\n")
    out.write("|---|---|" + "---|" * len(table.columns) + "\n")
    for grid_id in table.grids:
        grid = exp.grid(grid_id)
        methods = table.methods or list(grid.spec.methods)
        for method in methods:
            recs = by_model.get((grid_id, method), [])
            values = [mean_std(list(per_seed(recs, c, table.metric).values()), table.scale, table.digits,
                               seeds[grid_id]) if recs else "–" for c in table.columns]  # fmt: skip
            out.write(f"| {grid_id} | {method} | " + " | ".join(values) + " |\n")
    return out.getvalue()


def verdict_rows(verdicts: Sequence[Verdict], digits: int = 4) -> str:
    """The verdict table: claim, comparison, test, n, difference and its CI, verdict."""
    out = io.StringIO()
    out.write(
        "| claim | paper | comparison | test | n | mean difference (a − b) | 95% CI | verdict | note |\n"
    )
    out.write("|---|---|---|---|---|---|---|---|---|\n")
    for v in verdicts:
        c = v.claim
        comp = f"{c.a} {'>' if c.direction == 'greater' else '<'} {c.b}: {c.grid}, {c.selector}, {c.metric}"
        paper = f"{c.paper} {c.where}".strip()
        if v.result is None:
            out.write(
                f"| {c.text} | {paper} | {comp} | paired t | – | – | – | **{v.verdict}** | {v.note} |\n"
            )
            continue
        r = v.result
        ci = f"[{r.ci_low:+.{digits}f}, {r.ci_high:+.{digits}f}]"
        diff = f"{r.mean_difference:+.{digits}f}"
        out.write(f"| {c.text} | {paper} | {comp} | paired t | {r.n} | {diff} | {ci} | "
                  f"**{v.verdict}** | {v.note} |\n")  # fmt: skip
    return out.getvalue()


# Claims files in experiments/ (not experiments), with their BENCHMARKS.md heading: the papers'
# claims, and design decisions tested on the validation split.
CLAIMS_FILES = {
    "claims.toml": "Verdicts",
    "decisions.toml": "Design decisions, tested on the validation split",
}


def experiment_verdicts(exp: Experiment, store: ExperimentStore, claims_path: Path | None) -> list[Verdict]:
    """The verdicts of the claims that read this experiment, in `claims_path` and in the other
    claims files beside it (CLAIMS_FILES)."""
    if claims_path is None or not claims_path.exists():
        return []
    siblings = [claims_path.parent / n for n in CLAIMS_FILES if n != claims_path.name]
    paths = [claims_path, *(p for p in siblings if p.exists())]
    claims = [c for p in paths for c in load_claims(p) if c.experiment == exp.name]
    if not claims:
        return []
    cells = current_cells(exp, store)
    records = store.all_records(sorted(cells))
    verdicts = []
    for c in claims:
        mine = {k: v for k, v in cells.items() if k[0] == c.grid}
        _check_pooling(exp, mine, f"claim '{c.id}'")
        verdicts.append(judge(c, records))
    return verdicts


def _provenance_section(exp: Experiment, cells: dict[CellKey, StoredCell]) -> str:
    out = io.StringIO()
    out.write("## Provenance\n\n")
    code = Counter((c.provenance.source_hash, c.provenance.git_commit[:12], c.provenance.git_dirty)
                   for c in cells.values())  # fmt: skip
    for (source, commit, dirty), n in sorted(code.items()):
        state = " (modified tree)" if dirty else ""
        out.write(f"- code: source hash `{source}`, commit `{commit or 'none'}`{state}: {n} cells\n")
    if len({s for s, _, _ in code}) > 1:
        out.write(f"- **pools code versions**: {exp.pool_code_versions}\n")
    data = Counter((k[1], c.provenance.data_fingerprint) for k, c in cells.items())
    for (dataset, fp), n in sorted(data.items()):
        out.write(f"- data `{dataset}`: fingerprint `{fp}` ({n} cells)\n")
    soft = Counter((c.provenance.package_version, c.provenance.torch_version, c.provenance.device)
                   for c in cells.values())  # fmt: skip
    for (version, torch_version, device), n in sorted(soft.items()):
        out.write(f"- pmrfusion {version}, torch {torch_version}, device {device}: {n} cells\n")
    out.write(
        "\nPer-seed records: `records.csv`; one row per cell with its provenance and wall time: "
        "`cells.csv`.\n"
    )
    return out.getvalue()


def render_page(exp: Experiment, store: ExperimentStore, claims_path: Path | None = None) -> str:
    """The whole page (see the module docstring)."""
    cells = current_cells(exp, store)
    out = io.StringIO()
    out.write(f"# {exp.title}\n\n")
    if exp.description:
        out.write(exp.description + "\n\n")
    out.write(f"Made by `pmrfusion run {exp.path.as_posix()} --resume` (generated page: do not edit; "
              f"`pmrfusion run {exp.path.as_posix()} --page-only` rewrites it from the records)."
              "\n\n")  # fmt: skip
    out.write("## Grids\n\n| grid | dataset | methods | seeds | protocols | training | cells | compute |\n")
    out.write("|---|---|---|---|---|---|---|---|\n")
    for g in exp.grids:
        mine = [c for k, c in cells.items() if k[0] == g.id and not k[2].startswith("baseline:")]
        want = len(g.spec.methods) * len(g.spec.seeds)
        t = g.settings["train"]
        training = f"{t['epochs']} epochs (patience {t['patience']}), batch {t['batch_size']}, lr {t['lr']:g}"
        if g.spec.encoder is not None:
            training += f", {g.spec.encoder.regime}"
        if g.spec.method_train:
            training += "; " + ", ".join(f"{m} lr {t.lr:g}" for m, t in g.spec.method_train.items())
        minutes = sum(c.seconds for c in mine) / 60
        out.write(f"| {g.id} | {g.dataset} | {', '.join(g.spec.methods)} | {len(g.spec.seeds)} | "
                  f"{', '.join(g.settings['protocols']) or g.spec.task} | {training} | "
                  f"{len(mine)} of {want} | "
                  f"{minutes:.1f} min |\n")  # fmt: skip
    total = sum(c.seconds for c in cells.values()) / 60
    out.write(f"\nCompute: {total:.1f} min of training and evaluation in all (the cells' wall times).\n\n")
    if exp.tables:
        out.write("## Results\n\n")
        for t in exp.tables:
            out.write(render_table(exp, t, store, cells) + "\n")
    verdicts = experiment_verdicts(exp, store, claims_path)
    if verdicts:
        out.write("## Verdicts\n\nEach claim (of the papers, or a design decision of "
                  "`experiments/decisions.toml`) as a paired comparison over seeds "
                  "(`pmrfusion.bench.claims`): holds / fails when the 95% paired t interval of the mean "
                  "difference lies wholly on the claimed / the other side of 0, inconclusive when it "
                  "contains 0.\n\n")  # fmt: skip
        out.write(verdict_rows(verdicts) + "\n")
    out.write(_provenance_section(exp, cells))
    return out.getvalue()


def write_page(exp: Experiment, store: ExperimentStore, claims_path: Path | None = None) -> Path:
    """Write the page into the experiment's folder (atomically); its path."""
    path = exp.out / PAGE_FILE
    atomic_write_text(path, render_page(exp, store, claims_path))
    return path


VERDICT_COLUMNS = (
    "id", "paper", "where", "text", "experiment", "grid", "a", "b", "selector", "metric", "direction",
    "n", "mean_difference", "ci_low", "ci_high", "p_value", "verdict", "note",
)  # fmt: skip


def all_verdicts(claims_path: Path, root: Path | None = None) -> list[Verdict]:
    """Every claim of `claims_path` judged on the records of its experiment (the file
    `<name>.toml` beside the claims file; its folder relative to `root`); a claim whose
    experiment has no records is 'not run'."""
    claims = load_claims(claims_path)
    verdicts = []
    loaded: dict[str, tuple[Experiment, ExperimentStore] | None] = {}
    for c in claims:
        if c.experiment not in loaded:
            path = claims_path.parent / f"{c.experiment}.toml"
            if not path.exists():
                raise PMRFusionError(f"claim '{c.id}' reads experiment '{c.experiment}': {path} not found")
            exp = load_experiment(path, root)
            loaded[c.experiment] = (exp, ExperimentStore.read(exp.out))
        exp, store = loaded[c.experiment]
        cells = current_cells(exp, store)
        mine = {k: v for k, v in cells.items() if k[0] == c.grid}
        _check_pooling(exp, mine, f"claim '{c.id}'")
        verdicts.append(judge(c, store.all_records(sorted(mine))))
    return verdicts


def verdicts_csv(verdicts: Sequence[Verdict]) -> str:
    """One row per claim with its comparison, n, difference, CI, p and verdict."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=VERDICT_COLUMNS, lineterminator="\n")
    w.writeheader()
    for v in verdicts:
        r = v.result
        stats = {"n": r.n, "mean_difference": repr(r.mean_difference), "ci_low": repr(r.ci_low),
                 "ci_high": repr(r.ci_high), "p_value": repr(r.p_value)} if r else {}  # fmt: skip
        w.writerow({**{k: getattr(v.claim, k) for k in VERDICT_COLUMNS[:11]}, **stats, "verdict": v.verdict,
                    "note": v.note})  # fmt: skip
    return buf.getvalue()


def verdicts_page(verdicts: Sequence[Verdict], claims_path: Path) -> str:
    counts = Counter(v.verdict for v in verdicts)
    summary = ", ".join(f"{n} {k}" for k, n in counts.most_common())
    return (
        f"# Verdicts: every claim of `{claims_path.name}`, judged from the records\n\n"
        f"Made by `pmrfusion verdicts {claims_path.as_posix()}` (generated page: do not edit). "
        f"{len(verdicts)} claims: {summary}.\n\n"
        "Each claim is a comparison of two methods on one grid of an experiment: the per-seed values "
        "(the mean over the conditions its selector names) are paired by seed, and the 95% paired t "
        "interval of the mean difference a − b decides: **holds** when it lies wholly on the claimed "
        "side of 0, **fails** when wholly on the other side, **inconclusive** when it contains 0; "
        "**not engaged** when the mechanism check (the named loss falls in every seed) did not pass; "
        "**not run** when the experiment has no records yet. Why the paired t test: "
        "`pmrfusion.eval.paired`.\n\n" + verdict_rows(verdicts)
    )


def write_verdicts(claims_path: Path, out: Path, root: Path | None = None) -> list[Verdict]:
    """`out`/README.md and `out`/verdicts.csv from every claim (atomically); the verdicts."""
    verdicts = all_verdicts(claims_path, root)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "verdicts.csv", verdicts_csv(verdicts))
    atomic_write_text(out / PAGE_FILE, verdicts_page(verdicts, claims_path))
    return verdicts


def benchmarks_page(experiments_dir: Path, superseded: Sequence[Path] = (), root: Path | None = None) -> str:
    """BENCHMARKS.md: per experiment its state and headline table (the file's first table), then
    every verdict, then links to the pages made before experiment files; from committed files only."""
    files = sorted(p for p in experiments_dir.glob("*.toml") if p.name not in CLAIMS_FILES)
    out = io.StringIO()
    out.write(
        "# Benchmarks\n\nGenerated by `make benchmarks` from the committed records (do not edit). "
        "Every experiment is one file in `experiments/`, run by `pmrfusion run "
        "experiments/<name>.toml --resume`; its folder holds the per-seed records (`records.csv`), "
        "the provenance of every cell (`cells.csv`) and its full page. Spreads are sample std "
        "(ddof = 1) over seeds.\n\n"
    )
    for path in files:
        exp = load_experiment(path, root)
        store = ExperimentStore.read(exp.out)
        cells = current_cells(exp, store)
        want = sum(len(g.spec.methods) * len(g.spec.seeds) for g in exp.grids)
        done = sum(1 for k in cells if not k[2].startswith("baseline:"))
        link = f"{exp.out.as_posix()}/README.md"
        out.write(f"## {exp.title}\n\n`{path.as_posix()}`: {done} of {want} cells")
        if not done:
            out.write(" (not run yet).\n\n")
            continue
        out.write(f"; full page: [{link}]({link}).\n\n")
        if exp.tables:
            out.write(render_table(exp, exp.tables[0], store, cells).replace("### ", "#### ", 1) + "\n")
    for name, heading in CLAIMS_FILES.items():
        claims_path = experiments_dir / name
        if not claims_path.exists():
            continue
        verdicts = all_verdicts(claims_path, root)
        counts = Counter(v.verdict for v in verdicts)
        out.write(f"## {heading}\n\n" + ", ".join(f"{n} {k}" for k, n in counts.most_common()) + " of "
                  f"{len(verdicts)} claims (`pmrfusion verdicts {claims_path.as_posix()}`; the test: "
                  "`pmrfusion.eval.paired`).\n\n" + verdict_rows(verdicts) + "\n")  # fmt: skip
    if superseded:
        out.write("## Pages made before experiment files (superseded, mixed code versions)\n\n")
        for page in superseded:
            title = page.read_text().split("\n", 1)[0].lstrip("# ").strip()
            out.write(f"- [{page.as_posix()}]({page.as_posix()}): {title}\n")
    return out.getvalue()
