"""The retrieval task: test embeddings of both modalities scored by cross-modal mAP/R@k, CCA beside.

Task options: `objective` ("contrastive" | "joint"), `cca` (the CCA baseline), and `noise`: test-time
sample noise (PMR 5.2.2), a list of noise protocols (`NOISE_PROTOCOLS`) whose conditions corrupt the
test rows of both modalities (queries and gallery) before they are embedded; their records are
named "<condition>/<direction>:<metric>" (e.g. "gaussian:10/img2txt:mAP") under the protocol's name,
and the clean records stay as before (protocol "retrieval", condition "<direction>:<metric>").

Registered as task "retrieval" of the runner; `run_retrieval` and `retrieval_experiment` are
thin calls of `runner.run_grid` with that task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pmrfusion.bench.records import format_mean_std_worst, to_json
from pmrfusion.bench.runner import RunSpec, run_grid
from pmrfusion.bench.task_registry import Task, register_task
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.retrieval import cross_modal_metrics
from pmrfusion.paths import atomic_write_text

OBJECTIVES = ("contrastive", "joint")
NOISE_PROTOCOLS = ("gaussian", "salt_pepper")


def _embeddings(model, split, features=None) -> dict[str, np.ndarray]:
    """Test embeddings of both modalities (of `features` when given: a corrupted copy of the split's)."""
    import torch

    model.eval()
    with torch.no_grad():
        out = model(split.features if features is None else features, None)
    if not out.embeddings:
        raise PMRFusionError(
            "method returns no embeddings: use a contrastive method (cmmp, rg-cmmp, sg-cmmp)"
        )
    return {m: e.detach().cpu().numpy() for m, e in out.embeddings.items()}


def fit_cca(prepared, n_components: int | None = None, max_iter: int = 2000):
    """scikit-learn CCA fitted on the (scaled) train rows of the first two modalities."""
    from sklearn.cross_decomposition import CCA

    a, b = prepared.modalities[:2]
    xa, xb = prepared.train.features[a].numpy(), prepared.train.features[b].numpy()
    k = n_components or min(xa.shape[1], xb.shape[1])
    return CCA(n_components=k, max_iter=max_iter, scale=False).fit(xa, xb)


def cca_embeddings(prepared, n_components: int | None = None, max_iter: int = 2000, cca=None, features=None):
    """Test projections of both views by CCA fitted on the train rows (of `features` when given)."""
    a, b = prepared.modalities[:2]
    cca = cca or fit_cca(prepared, n_components, max_iter)
    test = prepared.test.features if features is None else features
    return cca.transform(test[a].numpy(), test[b].numpy())


def _records(dataset: str, method: str, seed: int, metrics: dict[str, float], mods: list[str],
             protocol: str = "retrieval", condition: str = "") -> list[dict]:  # fmt: skip
    prefix = f"{condition}/" if condition else ""
    return [
        {
            "dataset": dataset,
            "method": method,
            "protocol": protocol,
            "condition": prefix + cond,
            "present": list(mods),
            "seed": seed,
            "metric": cond.split(":", 1)[1],
            "value": float(v),
        }
        for cond, v in metrics.items()
    ]


def _noisy_tests(prepared, seed: int, options: dict):
    """The conditions of the task's noise protocols on the test split (see the module docstring)."""
    from pmrfusion.eval.protocols import conditions

    for protocol in options.get("noise", ()):
        yield from conditions(protocol, prepared, seed)


def _scored(embed, prepared, seed: int, options: dict, dataset: str, method: str) -> list[dict]:
    """Records of `embed` (test features -> the two modalities' embeddings) on the clean test rows
    and on every condition of the task's noise protocols."""
    mods = list(prepared.modalities)
    labels = prepared.test.labels.numpy()

    def score(features, protocol: str = "retrieval", condition: str = "") -> list[dict]:
        a, b = embed(features)
        met = cross_modal_metrics(a, b, labels, tuple(mods))
        return _records(dataset, method, seed, met, mods, protocol, condition)

    records = score(prepared.test.features)
    for cond in _noisy_tests(prepared, seed, options):
        records += score(cond.features, cond.protocol, cond.name)
    return records


def _evaluate(model, prepared, protocols, seed: int, base: dict, options: dict) -> list[dict]:
    a, b = prepared.modalities[:2]

    def embed(features):
        emb = _embeddings(model, prepared.test, features)
        return emb[a], emb[b]

    return _scored(embed, prepared, seed, options, base["dataset"], base["method"])


def _baselines(prepared, seed: int, base: dict, options: dict) -> list[dict]:
    if not options.get("cca", True):
        return []
    cca = fit_cca(prepared)
    embed = lambda features: cca_embeddings(prepared, cca=cca, features=features)  # noqa: E731
    return _scored(embed, prepared, seed, options, base["dataset"], "cca")


TASK_OPTIONS = ("objective", "cca", "noise")


def _check(data, options: dict) -> None:
    unknown = sorted(set(options) - set(TASK_OPTIONS))
    if unknown:
        raise PMRFusionError(f"unknown retrieval task options {unknown}: use {', '.join(TASK_OPTIONS)}")
    objective = options.get("objective", "contrastive")
    if objective not in OBJECTIVES:
        raise PMRFusionError(f"objective must be 'contrastive' or 'joint', got {objective!r}")
    noise = options.get("noise", [])
    if isinstance(noise, str) or any(p not in NOISE_PROTOCOLS for p in noise):
        raise PMRFusionError(f"retrieval noise must be a list of {', '.join(NOISE_PROTOCOLS)}, got {noise!r}")
    if len(data.modalities) != 2:
        raise PMRFusionError(f"retrieval needs exactly 2 modalities, dataset has {data.modalities}")


RETRIEVAL = register_task(
    Task(
        "retrieval",
        evaluate=_evaluate,
        baselines=_baselines,
        uses_protocols=False,
        # "contrastive": the embeddings are trained by InfoNCE (+ PMR preservation) only and the
        # classifier reads a detached representation (a probe for early stopping); "joint": the
        # classification loss also trains the embeddings
        method_overrides=lambda options: {
            "probe_only": options.get("objective", "contrastive") == "contrastive"
        },
        check=_check,
        feature_vectors_only=True,
    )
)


def run_retrieval(
    data,
    methods: Sequence[str],
    seeds: Sequence[int],
    tc,
    overrides: dict[str, Any] | None = None,
    objective: str = "contrastive",
    with_cca: bool = True,
    on_cell: Callable[[str, int], None] | None = None,
    noise: Sequence[str] = (),
) -> list[dict]:
    """Retrieval records for seeds x (CCA, methods): `run_grid` with task "retrieval"."""
    if objective not in OBJECTIVES:
        raise PMRFusionError(f"objective must be 'contrastive' or 'joint', got {objective!r}")
    spec = RunSpec(
        methods=list(methods),
        seeds=list(seeds),
        method_overrides=dict(overrides or {}),
        train=tc,
        task="retrieval",
        task_options={"objective": objective, "cca": with_cca, **({"noise": list(noise)} if noise else {})},
    )
    cb = None if on_cell is None else (lambda m, s, _seconds: on_cell(m, s))
    return run_grid(data, spec, cb)


def retrieval_table(records: list[dict], conditions: Sequence[str] | None = None) -> str:
    """Markdown: one row per condition, one column per method, mean ± std over seeds (worst)."""
    methods = list(dict.fromkeys(r["method"] for r in records))
    conds = list(conditions or dict.fromkeys(r["condition"] for r in records))
    cell: dict[tuple[str, str], list[float]] = {}
    for r in records:
        cell.setdefault((r["condition"], r["method"]), []).append(r["value"])
    lines = ["| condition | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for c in conds:
        vals = [format_mean_std_worst(cell.get((c, m), [])) for m in methods]
        lines.append(f"| {c} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def retrieval_experiment(
    dataset: str,
    methods: Sequence[str],
    seeds: int,
    out: Path,
    objective: str = "contrastive",
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 128,
    cca: bool = True,
    data_root: Path | None = None,
    log: Callable[[str], None] = print,
    noise: Sequence[str] = (),
    label_noise: float = 0.0,
) -> str:
    """Retrieval on a two-modality dataset; writes OUT/results.json and OUT/results.md, returns the md."""
    from pmrfusion.data.loaders import load_feature_dataset
    from pmrfusion.methods import method_config
    from pmrfusion.train.trainer import TrainConfig, seed_range

    names = list(methods)
    for m in names:
        method_config(m)
    if seeds < 1:
        raise PMRFusionError("--seeds must be >= 1")
    seed_list = seed_range(seeds)
    if objective not in OBJECTIVES:
        raise PMRFusionError(f"objective must be 'contrastive' or 'joint', got {objective!r}")
    tc = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, label_noise=label_noise)
    data = load_feature_dataset(dataset, "retrieval", data_root)
    records = run_retrieval(
        data, names, seed_list, tc, objective=objective, with_cca=cca,
        on_cell=lambda m, s: log(f"[dim]{m} seed {s} done[/dim]"), noise=noise,
    )  # fmt: skip
    a, b = data.modalities[:2]
    main = [f"{a}2{b}:mAP", f"{b}2{a}:mAP", "mean:mAP"]
    rest = [c for c in dict.fromkeys(r["condition"] for r in records) if c not in main]
    md = (
        f"# Retrieval on {data.name}: {', '.join(names)}{' + CCA' if cca else ''}; {seeds} seeds; "
        f"objective {objective}\n\nmean ± std over seeds (worst seed). mAP: category-match relevance "
        "over the whole test gallery; R@k: the paired item in the top k.\n\n"
        + retrieval_table(records, main + rest)
    )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", to_json(records, indent=1) + "\n")
    atomic_write_text(out / "results.md", md)
    log(md)
    log(f"{len(records)} records written to {out}/results.json (.md)")
    return md


__all__ = [
    "NOISE_PROTOCOLS",
    "RETRIEVAL",
    "cca_embeddings",
    "fit_cca",
    "retrieval_experiment",
    "retrieval_table",
    "run_retrieval",
]
