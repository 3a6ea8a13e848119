"""Cross-modal retrieval metrics.

Relevance is category match (query and item share a label) for mAP and mAP@k, the usual
Wikipedia protocol (Rasiwasia et al. 2010). R@k is instance recall: the fraction of queries
whose own paired item (same row) is among the top k.

AP of one query over a ranking of the whole gallery: mean over relevant items of the precision
at their rank. AP@k: sum_{i<=k} P@i rel_i / (number of relevant items in the top k), 0 when
the top k holds none (the convention of DCMH-style cross-modal hashing code).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pmrfusion.errors import PMRFusionError

KS = (1, 5, 10, 50)


def cosine_scores(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    return q @ g.T


def rankings(scores: np.ndarray) -> np.ndarray:
    """Gallery indices per query, best first (stable: ties keep gallery order)."""
    return np.argsort(-scores, axis=1, kind="stable")


def average_precision(relevant: np.ndarray, k: int | None = None) -> float:
    """AP of one ranked 0/1 relevance vector (optionally cut at k)."""
    rel = np.asarray(relevant, dtype=np.float64)
    if k is not None:
        rel = rel[:k]
    hits = rel.sum()
    if hits == 0:
        return 0.0
    precision = np.cumsum(rel) / np.arange(1, len(rel) + 1)
    return float((precision * rel).sum() / hits)


def retrieval_metrics(
    order: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray, ks: Sequence[int] = KS
) -> dict[str, float]:
    """mAP (whole gallery), mAP@k and R@k from per-query rankings (Q, G).

    Query i's paired gallery item is gallery row i (needs Q == G for R@k).
    """
    order = np.asarray(order)
    q_lab, g_lab = np.asarray(query_labels), np.asarray(gallery_labels)
    if order.shape[0] != len(q_lab) or order.shape[1] != len(g_lab):
        raise PMRFusionError(f"ranking shape {order.shape} does not match {len(q_lab)} x {len(g_lab)} labels")
    rel = g_lab[order] == q_lab[:, None]
    out = {"mAP": float(np.mean([average_precision(r) for r in rel]))}
    for k in ks:
        out[f"mAP@{k}"] = float(np.mean([average_precision(r, k) for r in rel]))
    if order.shape[0] == order.shape[1]:
        pos = np.argmax(order == np.arange(len(q_lab))[:, None], axis=1)
        for k in ks:
            out[f"R@{k}"] = float(np.mean(pos < k))
    return out


def cross_modal_metrics(
    emb_a: np.ndarray, emb_b: np.ndarray, labels: np.ndarray, names: tuple[str, str] = ("img", "txt")
) -> dict[str, float]:
    """Metrics for a->b and b->a, keys like "img2txt:mAP", plus "mean:mAP" (both directions)."""
    scores = cosine_scores(emb_a, emb_b)
    a, b = names
    out = {}
    for direction, s in ((f"{a}2{b}", scores), (f"{b}2{a}", scores.T)):
        for key, v in retrieval_metrics(rankings(s), labels, labels).items():
            out[f"{direction}:{key}"] = v
    out["mean:mAP"] = 0.5 * (out[f"{a}2{b}:mAP"] + out[f"{b}2{a}:mAP"])
    return out


__all__ = ["KS", "average_precision", "cosine_scores", "cross_modal_metrics", "rankings", "retrieval_metrics"]
