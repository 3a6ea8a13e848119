"""Build the embedded Handwritten dataset from ../shared/data (run once; output is committed)."""

from pathlib import Path

import numpy as np

from pmrfusion.data.loaders import BUILTIN_DIR, HANDWRITTEN_VIEWS, _loadmat

src = Path(__file__).resolve().parents[2] / "shared" / "data" / "handwritten"
m = _loadmat(src / "handwritten.mat")
arrays = {f"x_{name}": m["X"][0, i] for i, name in enumerate(HANDWRITTEN_VIEWS)}
arrays["y"] = m["Y"].reshape(-1).astype(np.int64)
arrays["train_idx"] = np.load(src / "splits_trust4conflict" / "handwritten_train_idx.npy")
arrays["test_idx"] = np.load(src / "splits_trust4conflict" / "handwritten_test_idx.npy")
BUILTIN_DIR.mkdir(exist_ok=True)
np.savez_compressed(BUILTIN_DIR / "handwritten.npz", **arrays)
print({k: (v.shape, v.dtype) for k, v in arrays.items()})
