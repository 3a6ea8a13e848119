"""MiniLM on this machine: frozen embedding throughput (sentences/s) and the cost of one fine-tuning
epoch (SentenceEncoder + linear regression head, L1 loss, AdamW) on the MOSI training transcripts.

Usage: PYTHONPATH=src python scripts/mosi_speed.py [--threads N]   (prints one CSV row per measurement)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pmrfusion.data.loaders import default_data_root
from pmrfusion.data.mosi import read_transcripts
from pmrfusion.modules.text_encoder import SentenceEncoder, embed_texts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    folder = default_data_root() / "mosi"
    texts = read_transcripts(folder)
    with np.load(folder / "mosi.npz") as z:
        y, train_idx = torch.from_numpy(z["y"]), z["train_idx"]
    enc = SentenceEncoder()
    enc.eval()
    print("measurement,threads,sentences,seconds,sentences_per_s")
    with torch.no_grad():
        enc(texts[:32])  # warm-up
        t = time.perf_counter()
        for s in range(0, len(texts), 128):
            enc(texts[s : s + 128])
        dt = time.perf_counter() - t
    print(f"frozen_embedding,{args.threads},{len(texts)},{dt:.2f},{len(texts) / dt:.1f}")
    embed_texts(texts, encoder=enc)  # fills the on-disk cache used by the mosi-minilm dataset
    head = torch.nn.Linear(enc.out_dim, 1)
    enc.train()
    opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=2e-5)
    train_texts = [texts[i] for i in train_idx]
    perm = np.random.default_rng(0).permutation(len(train_texts))
    t = time.perf_counter()
    for s in range(0, len(perm), args.batch_size):
        rows = perm[s : s + args.batch_size]
        pred = head(enc([train_texts[i] for i in rows])).squeeze(-1)
        loss = (pred - y[train_idx[rows]]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t
    print(f"finetune_epoch,{args.threads},{len(train_texts)},{dt:.2f},{len(train_texts) / dt:.1f}")


if __name__ == "__main__":
    main()
