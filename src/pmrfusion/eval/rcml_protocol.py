"""The `rcml` protocol: RCML's (AAAI 2024) normal and conflictive test sets on a test split.

Registered on import (the default protocol lists stay unchanged). The full RCML protocol
(min-max on the whole dataset, random 80/20 splits per run, prototypes from the whole set) is
`pmrfusion.bench.rcml` / `pmrfusion rcml`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from pmrfusion.data.rcml import conflictive_features
from pmrfusion.data.tensors import TensorSplit
from pmrfusion.eval.protocols import Condition, register_protocol


@register_protocol("rcml")
def rcml_conditions(test: TensorSplit, seed: int) -> Iterator[Condition]:
    """RCML's normal and conflictive test sets on a given test split (prototypes from the test rows)."""
    present = torch.ones(len(test), len(test.features), dtype=torch.bool)
    mods = test.modalities
    yield Condition("rcml", "normal", test.features, present, mods)
    labels = test.labels.numpy()
    feats = {m: x.numpy() for m, x in test.features.items()}
    num_classes = int(labels.max()) + 1 if len(labels) else 1
    rng = np.random.default_rng(seed * 104_729 + 1)
    x = conflictive_features(feats, labels, np.arange(len(test)), num_classes, rng)
    yield Condition("rcml", "conflictive", {m: torch.from_numpy(v) for m, v in x.items()}, present, mods)


__all__ = ["rcml_conditions"]
