"""AV-MNIST from the raw parts: IDX and wav decoding, leakage-free same-digit pairing."""

import gzip
import hashlib

import numpy as np
import pytest
from scipy.io import wavfile

from pmrfusion.data.avmnist import load_avmnist, pair_recordings, read_idx
from pmrfusion.data.loaders import default_data_root, load_dataset


@pytest.fixture(scope="module")
def folder():
    root = default_data_root()
    if root is None or not (root / "avmnist").is_dir():
        pytest.skip("../shared/data/avmnist not available")
    return root / "avmnist"


def test_idx_decoding_matches_the_canonical_mnist_test_set(folder):
    images = read_idx(folder / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(folder / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    # PROVENANCE.md: md5 of the uncompressed images file (header + bytes)
    with gzip.open(folder / "mnist" / "t10k-images-idx3-ubyte.gz") as f:
        raw = f.read()
    assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    assert images.tobytes() == raw[16:]
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first MNIST test digits
    assert np.bincount(labels).min() > 850


def test_builtin_avmnist_pairs_same_digit_without_leakage(folder):
    data = load_dataset("avmnist")
    assert data.kinds == {"image": "image", "audio": "audio"} and data.sample_rates == {"audio": 8000}
    rate, _ = wavfile.read(folder / "fsdd" / "recordings" / "0_george_0.wav")
    assert rate == 8000
    files = sorted(p.name for p in (folder / "fsdd" / "recordings").glob("*.wav"))
    digits = np.array([int(f.split("_")[0]) for f in files])
    takes = np.array([int(f.split("_")[2][:-4]) for f in files])
    rec = data.source.index["audio"]
    assert np.array_equal(digits[rec], data.labels)  # same digit, every pair
    test, train = data.split("test"), data.split("train")
    assert set(np.intersect1d(test, train)) == set()
    assert takes[rec[test]].max() <= 4 and takes[rec[train]].min() >= 5
    # no test recording is heard in training, and the image split is stratified 80/20
    assert not set(rec[test]) & set(rec[train])
    share = np.bincount(data.labels[test]) / np.bincount(data.labels)
    assert len(test) == 2000 and abs(share - 0.2).max() < 0.01
    # decoded samples: the image is the IDX image, the audio that recording scaled to [-1, 1]
    images = read_idx(folder / "mnist" / "t10k-images-idx3-ubyte.gz")
    s = data.source.get(int(test[0]), ["image", "audio"])
    assert np.array_equal(s["image"].numpy()[0], images[test[0]])
    _, wave = wavfile.read(folder / "fsdd" / "recordings" / files[rec[test[0]]])
    n = min(len(wave), 8000)
    assert np.allclose(s["audio"].numpy()[:n], wave[:n] / 32768.0)
    # seeded: the pairing is reproducible and changes with the seed
    other = load_avmnist(folder, seed=1)
    assert np.array_equal(load_avmnist(folder).source.index["audio"], rec)
    assert not np.array_equal(other.source.index["audio"], rec)


def test_pairing_rejects_a_digit_without_test_recordings():
    labels = np.array([0, 0, 1, 1])
    digits, takes = np.array([0, 0, 1]), np.array([1, 7, 9])  # digit 1 has no take 0-4
    out = pair_recordings(labels, np.array([0]), digits, takes, 0)
    assert out[0] == 0 and out[1] == 1
    with pytest.raises(Exception, match="no test recording of digit 1"):
        pair_recordings(labels, np.array([0, 2]), digits, takes, 0)
