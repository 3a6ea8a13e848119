"""Speed of raw-input training: samples/s per method end to end, data-wait share, encoder FLOP/s vs
the matmul roofline, peak memory of one epoch over a large manifest; and the MiniLM text encoder's
throughput (frozen embedding, one fine-tuning epoch).

Started by `pmrfusion speed-encoders --dataset avmnist --out DIR` and
`pmrfusion speed-encoders --dataset mosi --out DIR` (the text encoder).
"""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from pmrfusion.analysis.throughput import matmul_roofline
from pmrfusion.bench.runner import fit_method, prepare_seed
from pmrfusion.data.prepared import PreparedData
from pmrfusion.methods.encoded import build_model
from pmrfusion.modules.composition import EncoderConfig
from pmrfusion.train.regimes import build_encoders
from pmrfusion.train.trainer import TrainConfig, build_optimizers, optimizer_step, total_loss

END_TO_END_METHODS = (
    "concat",
    "late",
    "sg-concat",
    "rg-concat",
    "ffn-concat",
    "cmmp",
    "rg-cmmp",
    "qmf",
    "pdf",
)


def timed_steps(model, split, batch_size: int, steps: int, seed: int = 0) -> tuple[float, float, int]:
    """(seconds, seconds waiting for data, samples) over `steps` training steps after a first batch."""
    opts = build_optimizers(model, TrainConfig())
    it = iter(split.batches(split.loader(batch_size, shuffle_seed=seed)))
    next(it)  # workers started, first batch ready
    wait, n = 0.0, 0
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        t = time.perf_counter()
        batch = next(it)
        wait += time.perf_counter() - t
        loss, _ = total_loss(model, batch)
        optimizer_step(loss, opts)
        n += len(batch.labels)
    return time.perf_counter() - start, wait, n


def end_to_end_speed(
    prepared: PreparedData,
    methods: Sequence[str],
    cfg: EncoderConfig,
    batch_size: int = 64,
    steps: int = 40,
    workers: Sequence[int] = (2, 0),
    report: Callable[[dict], None] = lambda row: None,
) -> list[dict]:
    """Per (method, DataLoader workers): training samples/s and the share of step time spent waiting
    for data; every method with the first worker count, `concat` with the others."""
    rows = []
    for i, n_workers in enumerate(workers):
        prepared.train.loader_settings.num_workers = n_workers
        for method in methods if i == 0 else methods[:1]:
            torch.manual_seed(0)
            model = build_model(build_encoders(prepared, cfg), method, prepared.num_classes)
            secs, wait, n = timed_steps(model, prepared.train, batch_size, steps)
            rows.append({"method": method, "num_workers": n_workers, "batch_size": batch_size,
                         "steps": steps, "samples_per_s": round(n / secs, 1),
                         "data_wait_share": round(wait / secs, 4)})  # fmt: skip
            report(rows[-1])
    prepared.train.loader_settings.num_workers = 0
    return rows


def encoder_flops(prepared: PreparedData, cfg: EncoderConfig, batch_size: int = 256) -> dict[str, float]:
    """The encoders' forward+backward GFLOP per step and GFLOP/s at `batch_size`, vs a same-run fp32
    matmul (median of 10 products of 1024 x 1024 matrices)."""
    encoders = build_encoders(prepared, cfg)
    feats = next(prepared.train.batches(prepared.train.loader(batch_size, shuffle_seed=0))).features
    flops, secs = 0, 0.0
    for m, enc in encoders.items():
        with FlopCounterMode(display=False) as counter:
            enc(feats[m]).sum().backward()
        flops += counter.get_total_flops()
        start = time.perf_counter()
        for _ in range(5):
            enc(feats[m]).sum().backward()
        secs += (time.perf_counter() - start) / 5
    peak = matmul_roofline(1024, 10) / 1e9
    achieved = flops / secs / 1e9
    return {"encoder_gflop_per_step": round(flops / 1e9, 4), "encoder_gflops": round(achieved, 4),
            "matmul_gflops": round(peak, 4), "fraction_of_matmul": round(achieved / peak, 4)}  # fmt: skip


def _epoch_memory(manifest: str, queue) -> None:
    """In a fresh process: load `manifest`, one epoch of concat; peak RSS of it and its workers (MiB)."""
    torch.set_num_threads(1)
    from pmrfusion.data.loaders import load_dataset

    start = time.perf_counter()
    data = load_dataset(manifest)
    loaded = time.perf_counter()
    prepared = prepare_seed(data, 0, 0.0, EncoderConfig())
    prepared.val = None
    fit_method("concat", prepared, 0, {}, TrainConfig(epochs=1, batch_size=256), encoder=EncoderConfig())
    done = time.perf_counter()
    main_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    queue.put({"rows": len(data.labels), "train_rows": len(prepared.train),
               "peak_rss_main_mib": round(main_mib), "peak_rss_largest_worker_mib": round(worker_mib),
               "validate_s": round(loaded - start, 1), "epoch_s": round(done - loaded, 1)})  # fmt: skip


def epoch_memory(data, rows: int, scratch: Path) -> dict[str, float]:
    """Peak RSS (main process, largest DataLoader worker) and times of loading (with its content checks)
    and one epoch over a `rows`-row AV-MNIST manifest written under `scratch`, measured in a fresh process."""
    from pmrfusion.data.avmnist import export_manifest

    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        manifest = export_manifest(data, Path(tmp), rows=rows, distinct=500)
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_epoch_memory, args=(str(manifest), queue))
        proc.start()
        result = queue.get()
        proc.join()
    return result


def text_encoder_speed(texts: list[str], targets: torch.Tensor, train_rows: np.ndarray, threads: int,
                       batch_size: int = 32) -> list[dict]:  # fmt: skip
    """MiniLM: frozen embedding sentences/s over `texts`, and one fine-tuning epoch (SentenceEncoder +
    linear regression head, L1 loss, AdamW lr 2e-5) over the training rows."""
    from pmrfusion.modules.text_encoder import SentenceEncoder

    enc = SentenceEncoder()
    enc.eval()
    with torch.no_grad():
        enc(texts[:32])  # warm-up
        start = time.perf_counter()
        for s in range(0, len(texts), 128):
            enc(texts[s : s + 128])
        frozen = time.perf_counter() - start
    head = torch.nn.Linear(enc.out_dim, 1)
    enc.train()
    opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=2e-5)
    train_texts = [texts[i] for i in train_rows]
    order = np.random.default_rng(0).permutation(len(train_texts))
    start = time.perf_counter()
    for s in range(0, len(order), batch_size):
        rows = order[s : s + batch_size]
        pred = head(enc([train_texts[i] for i in rows])).squeeze(-1)
        loss = (pred - targets[train_rows[rows]]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    tuned = time.perf_counter() - start
    return [
        {"measurement": "frozen_embedding", "threads": threads, "sentences": len(texts),
         "seconds": round(frozen, 2), "sentences_per_s": round(len(texts) / frozen, 1)},
        {"measurement": "finetune_epoch", "threads": threads, "sentences": len(train_texts),
         "seconds": round(tuned, 2), "sentences_per_s": round(len(train_texts) / tuned, 1)},
    ]  # fmt: skip


def mosi_text_speed(data_root=None, threads: int = 1, batch_size: int = 32) -> list[dict]:
    """`text_encoder_speed` on the CMU-MOSI transcripts (all rows; fine-tuning on the training rows)."""
    from pmrfusion.data.loaders import default_data_root
    from pmrfusion.data.mosi import read_transcripts
    from pmrfusion.errors import PMRFusionError

    root = default_data_root(data_root)
    if root is None or not (root / "mosi" / "mosi.npz").exists():
        raise PMRFusionError("CMU-MOSI not found: give --data-root (a folder with mosi/mosi.npz)")
    with np.load(root / "mosi" / "mosi.npz", allow_pickle=False) as z:
        targets, train_rows = torch.from_numpy(z["y"]).float(), z["train_idx"]
    texts = read_transcripts(root / "mosi", len(targets))
    return text_encoder_speed(texts, targets, train_rows, threads, batch_size)


__all__ = [
    "encoder_flops",
    "end_to_end_speed",
    "epoch_memory",
    "mosi_text_speed",
    "text_encoder_speed",
    "timed_steps",
]
