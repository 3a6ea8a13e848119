"""The accuracy summary table that `eval` and `bench` print."""

from __future__ import annotations

from rich.table import Table

from pmrfusion.cli.app import console


def print_summary(records: list[dict], num_modalities: int) -> None:
    from pmrfusion.bench.records import group_mean, is_keep_one, is_leave_one_out, summarise, summary_grid
    from pmrfusion.eval.regression_metrics import primary_metric

    metric = primary_metric(records)
    methods_, grid = summary_grid(summarise(records, metric))
    table = Table("condition", *methods_, title=f"{metric}: mean ± std, ddof 1 (worst seed)")
    for _, cond, vals in grid:
        table.add_row(cond, *vals)
    if any(r["protocol"] == "missing" for r in records):
        loo = [
            group_mean(records, m, lambda r: is_leave_one_out(r, num_modalities), metric) for m in methods_
        ]
        table.add_row("[b]mean leave-one-out[/b]", *[f"{v:.4f}" for v in loo])
        if num_modalities > 2:
            keep = [group_mean(records, m, is_keep_one, metric) for m in methods_]
            table.add_row("[b]mean keep-one[/b]", *[f"{v:.4f}" for v in keep])
    console.print(table)
