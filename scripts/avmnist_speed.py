"""End-to-end speed on AV-MNIST: samples/s per method, data-wait share, encoder FLOP/s, peak RSS.

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/avmnist_speed.py --out results/avmnist

Writes speed.csv (one row per method: train samples/s, share of step time waiting for the
DataLoader) and memory.csv (peak RSS of one epoch over a generated 100k-row manifest).
"""

from __future__ import annotations

import argparse
import csv
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from pmrfusion.bench.runner import prepare_seed
from pmrfusion.data.loaders import load_dataset
from pmrfusion.modules.composition import EncoderConfig
from pmrfusion.train.regimes import build_encoders
from pmrfusion.train.trainer import TrainConfig, build_optimizers, optimizer_step, total_loss

METHODS = ["concat", "late", "sg-concat", "rg-concat", "ffn-concat", "cmmp", "rg-cmmp", "qmf", "pdf"]


def timed_steps(model, split, batch_size: int, steps: int, seed: int = 0) -> tuple[float, float, int]:
    """(seconds, seconds waiting for data, samples) over `steps` training steps."""
    from pmrfusion.methods.encoded import build_model  # noqa: F401 (model given)

    opts = build_optimizers(model, TrainConfig())
    loader = split.loader(batch_size, shuffle_seed=seed)
    it = iter(split.batches(loader))
    next(it)  # workers started, first batch ready
    wait = 0.0
    n = 0
    model.train()
    t0 = time.perf_counter()
    for _ in range(steps):
        w = time.perf_counter()
        batch = next(it)
        wait += time.perf_counter() - w
        loss, _ = total_loss(model, batch)
        optimizer_step(loss, opts)
        n += len(batch.labels)
    return time.perf_counter() - t0, wait, n


def encoder_flops(prepared, cfg, batch: int = 256) -> dict[str, float]:
    """Encoder forward+backward FLOP/s at batch 256 vs a same-run fp32 matmul."""
    from torch.utils.flop_counter import FlopCounterMode

    encs = build_encoders(prepared, cfg)
    feats = next(prepared.train.batches(prepared.train.loader(batch, shuffle_seed=0))).features
    flops, secs = 0, 0.0
    for m, enc in encs.items():
        with FlopCounterMode(display=False) as fc:
            enc(feats[m]).sum().backward()
        flops += fc.get_total_flops()
        t0 = time.perf_counter()
        for _ in range(5):
            enc(feats[m]).sum().backward()
        secs += (time.perf_counter() - t0) / 5
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    peak = 2 * 1024**3 * 10 / (time.perf_counter() - t0)
    return {"encoder_gflop_per_step": flops / 1e9, "encoder_gflops": flops / secs / 1e9,
            "matmul_gflops": peak / 1e9, "fraction_of_matmul": flops / secs / peak}  # fmt: skip


def rss_epoch(rows: int, folder: Path) -> dict[str, float]:
    """Peak RSS (main process, largest worker) of validating + one epoch over a `rows`-row manifest."""
    from pmrfusion.data.avmnist import export_manifest

    manifest = export_manifest(load_dataset("avmnist"), folder, rows=rows, distinct=500)
    code = f"""
import resource, time, torch
torch.set_num_threads(1)
from pmrfusion.data.loaders import load_dataset
from pmrfusion.bench.runner import fit_method, prepare_seed
from pmrfusion.modules.composition import EncoderConfig
from pmrfusion.train.trainer import TrainConfig
t0 = time.perf_counter()
data = load_dataset({str(manifest)!r})
t1 = time.perf_counter()
p = prepare_seed(data, 0, 0.0, EncoderConfig())
p.val = None
fit_method("concat", p, 0, {{}}, TrainConfig(epochs=1, batch_size=256), encoder=EncoderConfig())
t2 = time.perf_counter()
del p
import gc; gc.collect()
me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{{me:.0f}} {{kids:.0f}} {{t1 - t0:.1f}} {{t2 - t1:.1f}} {{len(data.labels)}}")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    me, kids, t_val, t_epoch, n = r.stdout.split()[-5:]
    return {"rows": int(n), "train_rows": int(0.8 * int(n)), "peak_rss_main_mib": float(me),
            "peak_rss_largest_worker_mib": float(kids), "validate_s": float(t_val),
            "epoch_s": float(t_epoch)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("results/avmnist"))
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_dataset("avmnist")
    cfg = EncoderConfig()
    prepared = prepare_seed(data, 0, 0.15, cfg)
    from pmrfusion.methods.encoded import build_model

    rows = []
    for workers in (2, 0):
        prepared.train.loader_settings.num_workers = workers
        for method in METHODS if workers == 2 else ["concat"]:
            torch.manual_seed(0)
            model = build_model(build_encoders(prepared, cfg), method, 10)
            secs, wait, n = timed_steps(model, prepared.train, args.batch_size, args.steps)
            rows.append({"method": method, "num_workers": workers, "batch_size": args.batch_size,
                         "steps": args.steps, "samples_per_s": round(n / secs, 1),
                         "data_wait_share": round(wait / secs, 4)})  # fmt: skip
            print(rows[-1], flush=True)
    with (args.out / "speed.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    prepared.train.loader_settings.num_workers = 0
    fl = encoder_flops(prepared, cfg)
    print(fl, flush=True)
    with (args.out / "flops.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fl))
        w.writeheader()
        w.writerow({k: round(v, 4) for k, v in fl.items()})
    with tempfile.TemporaryDirectory(dir="runs") as tmp:
        mem = rss_epoch(args.rows, Path(tmp))
    print(mem, flush=True)
    with (args.out / "memory.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(mem))
        w.writeheader()
        w.writerow(mem)
    print("self peak RSS (MiB)", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main()
