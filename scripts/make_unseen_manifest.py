"""Write a manifest dataset that no test uses: held-out-speaker spoken digits + inverted MNIST JPEGs.

    python scripts/make_unseen_manifest.py --out runs/unseen-digits

Every FSDD recording (2,500, native variable length, copied as-is) is paired with an MNIST test image of the
same digit (the last 2,500 images of the IDX file, colours inverted, saved as JPEG). Split column: speaker
`theo` is the test split, the four others are train (validation is carved by the library). The manifest is a
`.jsonl` file, unlike the built-in AV-MNIST export (`.csv`, PNG, fixed-length wavs, image-level split), so the
same commands are shown to work on a folder they were not written around.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from pmrfusion.data.avmnist import read_idx

TEST_SPEAKER = "theo"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=Path("../shared/data/avmnist"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from PIL import Image

    images = read_idx(args.shared / "mnist" / "t10k-images-idx3-ubyte.gz")[-2500:]
    digits = read_idx(args.shared / "mnist" / "t10k-labels-idx1-ubyte.gz")[-2500:]
    by_digit = {d: list(np.flatnonzero(digits == d)) for d in range(10)}
    wavs = sorted((args.shared / "fsdd" / "recordings").glob("*.wav"))
    if args.out.exists():
        raise SystemExit(f"error: {args.out} exists; choose a new folder")
    (args.out / "img").mkdir(parents=True)
    (args.out / "wav").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for wav in wavs:
        digit, speaker, take = wav.stem.split("_")
        pool = by_digit[int(digit)]
        img = images[pool.pop(int(rng.integers(len(pool))))] if pool else images[by_digit_any(digits, digit)]
        Image.fromarray(255 - np.asarray(img, dtype=np.uint8)).save(args.out / "img" / f"{wav.stem}.jpg")
        shutil.copyfile(wav, args.out / "wav" / wav.name)
        rows.append({"picture": f"img/{wav.stem}.jpg", "speech": f"wav/{wav.name}", "label": int(digit),
                     "split": "test" if speaker == TEST_SPEAKER else "train"})  # fmt: skip
    with (args.out / "digits.jsonl").open("w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    print(f"{len(rows)} rows -> {args.out / 'digits.jsonl'}")


def by_digit_any(digits: np.ndarray, digit: str) -> int:
    """Any image of `digit` (used once a digit's images are all paired)."""
    return int(np.flatnonzero(digits == int(digit))[0])


if __name__ == "__main__":
    main()
