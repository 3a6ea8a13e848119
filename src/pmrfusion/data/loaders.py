"""Load datasets: canonical `.npz`, multi-view `.mat`, and the built-in names."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pmrfusion.data.splits import split_strata, stratified_split
from pmrfusion.data.validation import MODALITY_NAME, check_features, check_num_classes, one_based_splits
from pmrfusion.errors import PMRFusionError, first_line

if TYPE_CHECKING:  # the dataset classes (torch) load with the first dataset, not with the catalog
    from pmrfusion.data.dataset import MultimodalData

BUILTIN_DIR = Path(__file__).parent / "builtin"
DATA_ENV = "PMRFUSION_DATA"


def default_data_root(data_root: str | os.PathLike | None = None) -> Path | None:
    """The data root: the argument, else $PMRFUSION_DATA, else ../shared/data if it exists."""
    if data_root is not None:
        return Path(data_root)
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    candidates = [
        Path.cwd().parent / "shared" / "data",
        Path(__file__).resolve().parents[4] / "shared" / "data",
    ]
    for c in candidates:
        if c.is_dir():
            return c
    return None


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise PMRFusionError(f"{what} not found: {path}")
    return path


# ----------------------------------------------------------------------------- canonical npz


def load_npz(path: str | os.PathLike, name: str | None = None, split_seed: int = 0) -> MultimodalData:
    """Canonical file: `x_<modality>` arrays (N, d), `y` (N,), optional `{train,val,test}_idx`.

    Without split indices, a stratified 80/20 train/test split (seeded) is made and noted.
    Naturally missing modalities: an all-NaN row of `x_<m>`, or False in an optional boolean
    `present_<m>` (N,) array, marks modality m absent for that sample (`data.presence`); a partly
    NaN row is an error naming the row. `y` may hold strings or any integers (encoded with a
    stored class list, `data.labels`); without `y` the dataset is unlabelled (every row in "test").
    """
    from pmrfusion.data.dataset import MultimodalData

    path = _require(Path(path), "dataset file")
    if not zipfile.is_zipfile(path):
        raise PMRFusionError(f"cannot read {path} as .npz: not a zip archive of .npy arrays")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise PMRFusionError(f"cannot read {path} as .npz: {first_line(e)}") from None
    if not arrays:
        raise PMRFusionError(f"{path}: the archive holds no arrays")
    not_arrays = sorted(k for k, v in arrays.items() if not isinstance(v, np.ndarray))
    if not_arrays:
        raise PMRFusionError(f"cannot read {path} as .npz: members {not_arrays} are not .npy arrays")
    features = {k[2:]: v for k, v in arrays.items() if k.startswith("x_")}
    if not features:
        raise PMRFusionError(f"{path}: no 'x_<modality>' arrays found (keys: {sorted(arrays)})")
    present = {k[8:]: v for k, v in arrays.items() if k.startswith("present_")}
    stray = sorted(set(present) - set(features))
    if stray:
        raise PMRFusionError(f"{path}: 'present_<m>' arrays for unknown modalities {stray}")
    splits = {s: arrays[f"{s}_idx"] for s in ("train", "val", "test") if f"{s}_idx" in arrays}
    if "y" not in arrays:
        n = len(next(iter(features.values())))
        return MultimodalData(name or path.stem, features, None, {"test": np.arange(n)},
                              notes=["no 'y' array: unlabelled (every row in the 'test' split)"],
                              present=present or None)  # fmt: skip
    labels = np.asarray(arrays["y"]).reshape(-1)
    notes = []
    if "train" not in splits and "test" not in splits:
        splits = stratified_split(split_strata(labels), 0.2, split_seed)
        notes.append(f"no split in file: stratified 80/20 split made with seed {split_seed}")
    elif "train" not in splits or "test" not in splits:
        raise PMRFusionError(f"{path}: give both 'train_idx' and 'test_idx' (or neither)")
    num_classes = check_num_classes(str(path), arrays["num_classes"]) if "num_classes" in arrays else -1
    return MultimodalData(
        name or path.stem, features, labels, splits, num_classes, notes, present=present or None
    )


# ----------------------------------------------------------------------------- multi-view mat


def _loadmat(path: Path) -> dict:
    import scipy.io as sio

    try:
        return sio.loadmat(path)
    except NotImplementedError:
        raise PMRFusionError(f"{path}: MATLAB v7.3 (HDF5) files are not supported") from None
    except (OSError, ValueError, TypeError) as e:
        raise PMRFusionError(f"cannot read {path} as .mat: {e}") from None


def _mat_views(m: dict, path: Path) -> list[np.ndarray]:
    for key in ("X", "x", "data", "fea"):
        if key in m and m[key].dtype == object:
            cells = m[key].reshape(-1)
            return [np.asarray(c) for c in cells]
    raise PMRFusionError(f"{path}: no cell array of views ('X') found (keys: {_user_keys(m)})")


def _user_keys(m: dict) -> list[str]:
    return sorted(k for k in m if not k.startswith("__"))


def _mat_labels(m: dict, path: Path) -> np.ndarray:
    for key in ("Y", "gt", "y", "labels", "truth"):
        if key in m:
            return np.asarray(m[key]).reshape(-1)
    raise PMRFusionError(f"{path}: no label array ('Y' or 'gt') found (keys: {_user_keys(m)})")


def _view_names(m: dict, count: int) -> list[str]:
    if "feas" in m and m["feas"].dtype == object and m["feas"].size == count:
        names = [str(np.asarray(c).reshape(-1)[0]) for c in m["feas"].reshape(-1)]
        if len(set(names)) == count and all(MODALITY_NAME.match(nm) for nm in names):
            return names
    return [f"view{i}" for i in range(count)]


def load_mat(
    path: str | os.PathLike,
    name: str | None = None,
    view_names: list[str] | None = None,
    split_seed: int = 0,
) -> MultimodalData:
    """Multi-view `.mat`: cell array `X` of views, labels `Y`/`gt`.

    View orientation ((n, d) or (d, n)) and 1-based labels are detected and noted.
    Split indices are taken from `train_idx`/`test_idx` keys when present, else a
    stratified 80/20 split is made with `split_seed`.
    """
    from pmrfusion.data.dataset import MultimodalData

    path = _require(Path(path), "dataset file")
    m = _loadmat(path)
    labels = _mat_labels(m, path)
    n = len(labels)
    notes: list[str] = []
    views = []
    for i, v in enumerate(_mat_views(m, path)):
        if v.ndim != 2:
            raise PMRFusionError(f"{path}: view {i} is not 2-D (shape {v.shape})")
        if v.shape[0] != n and v.shape[1] == n:
            v = v.T
            notes.append(f"view {i} stored (d, n): transposed")
        elif v.shape[0] != n:
            raise PMRFusionError(f"{path}: view {i} has shape {v.shape}, neither side matches {n} labels")
        views.append(check_features(str(path), f"view{i}", v).astype(np.float32))
    labels, base_note = _zero_based(labels)
    if base_note:
        notes.append(base_note)
    names = view_names or _view_names(m, len(views))
    splits = {}
    if "train_idx" in m and "test_idx" in m:
        splits = {"train": m["train_idx"].reshape(-1), "test": m["test_idx"].reshape(-1)}
        if one_based_splits(splits, n):
            splits = {k: np.asarray(v).astype(np.int64) - 1 for k, v in splits.items()}
            notes.append("split indices are 1-based (MATLAB): shifted to 0-based")
    else:
        splits = stratified_split(split_strata(labels), 0.2, split_seed)
        notes.append(f"no split in file: stratified 80/20 split made with seed {split_seed}")
    return MultimodalData(name or path.stem, dict(zip(names, views)), labels, splits, notes=notes)


def _zero_based(labels: np.ndarray) -> tuple[np.ndarray, str | None]:
    labels = np.asarray(labels)
    integral = labels.dtype.kind in "iuf" and labels.size and np.all(np.isfinite(labels))
    if integral and np.all(labels == np.round(labels)) and labels.min() == 1:
        return labels.astype(np.int64) - 1, "labels are 1-based: shifted to 0-based"
    return labels, None


# ----------------------------------------------------------------------------- built-in names


@dataclass(frozen=True)
class Catalog:
    """What `pmrfusion datasets` lists without loading: the data kind ("features" or "raw"), the
    number of samples and classes (1: regression), each modality's dim (raw: the decoded size) and
    the split sizes (train/[val/]test). `tests/data/test_catalog.py` checks it against the loaded data."""

    kind: str
    samples: int
    classes: int
    modalities: tuple[tuple[str, int], ...]
    split: tuple[int, ...]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    loader: Callable[[Path | None], MultimodalData]
    needs_root: bool = True
    catalog: Catalog | None = None
    folder: str = ""  # the folder under the data root it reads (default: its name)


def _with_split(data: MultimodalData, folder: Path, stem: str) -> MultimodalData:
    data.notes = [n for n in data.notes if not n.startswith("no split in file")]
    data.splits = {
        "train": np.load(_require(folder / f"{stem}_train_idx.npy", "split file")),
        "test": np.load(_require(folder / f"{stem}_test_idx.npy", "split file")),
    }
    data.__post_init__()
    return data


def _root(root: Path | None, name: str) -> Path:
    if root is None:
        raise PMRFusionError(f"dataset '{name}' needs a data root: pass --data-root or set ${DATA_ENV}")
    return _require(root / name, f"folder for dataset '{name}'")


def _handwritten(_: Path | None) -> MultimodalData:
    return load_npz(BUILTIN_DIR / "handwritten.npz", name="handwritten")


def _handwritten_tmc(root: Path | None) -> MultimodalData:
    d = _root(root, "handwritten")
    data = load_mat(d / "handwritten.mat", "handwritten-tmc", HANDWRITTEN_VIEWS)
    return _with_split(data, d / "splits_tmc_iclr2021", "handwritten")


def _cub(root: Path | None) -> MultimodalData:
    d = _root(root, "cub")
    data = load_mat(d / "cub_googlenet_doc2vec_c10.mat", "cub", ["img", "txt"])
    return _with_split(data, d / "splits_trust4conflict", "cub_googlenet_doc2vec_c10")


def _pie(root: Path | None) -> MultimodalData:
    d = _root(root, "pie")
    data = load_mat(d / "PIE_face_10.mat", "pie", ["intensity", "lbp", "gabor"])
    return _with_split(data, d / "splits_trust4conflict", "PIE_face_10")


def _wiki_labels(path: Path) -> np.ndarray:
    lines = [ln for ln in _require(path, "label list").read_text().splitlines() if ln.strip()]
    return np.array([int(ln.split("\t")[-1]) - 1 for ln in lines], dtype=np.int64)


def _wikipedia(root: Path | None) -> MultimodalData:
    from pmrfusion.data.dataset import MultimodalData

    d = _root(root, "wikipedia")
    m = _loadmat(_require(d / "raw_features.mat", "dataset file"))
    ytr = _wiki_labels(d / "trainset_txt_img_cat.list")
    yte = _wiki_labels(d / "testset_txt_img_cat.list")
    img = np.concatenate([m["I_tr"], m["I_te"]]).astype(np.float32)
    txt = np.concatenate([m["T_tr"], m["T_te"]]).astype(np.float32)
    n_tr = len(ytr)
    splits = {"train": np.arange(n_tr), "test": np.arange(n_tr, n_tr + len(yte))}
    return MultimodalData("wikipedia", {"img": img, "txt": txt}, np.concatenate([ytr, yte]), splits)


def _avmnist(root: Path | None):
    from pmrfusion.data.avmnist import load_avmnist

    return load_avmnist(_root(root, "avmnist"))


def _mosi(text: str, split: str) -> Callable[[Path | None], MultimodalData]:
    def load(root: Path | None) -> MultimodalData:
        from pmrfusion.data.mosi import load_mosi

        return load_mosi(_root(root, "mosi"), text, split)

    return load


def _mosi_text(root: Path | None):
    from pmrfusion.data.mosi import load_mosi_text

    return load_mosi_text(_root(root, "mosi"))


HANDWRITTEN_VIEWS = ["pixel", "fourier", "profile", "zernike", "karhunen", "morph"]
_HANDWRITTEN_DIMS = (("pixel", 240), ("fourier", 76), ("profile", 216), ("zernike", 47), ("karhunen", 64),
                     ("morph", 6))  # fmt: skip
_MOSI_SPLIT = (1252, 195, 752)


def _mosi_dims(text: int) -> tuple[tuple[str, int], ...]:
    return (("text", text), ("audio", 73), ("video", 100))


DATASETS: dict[str, DatasetInfo] = {
    "handwritten": DatasetInfo(
        "handwritten", "UCI mfeat digits, 6 views, Trust4Conflict split (embedded)", _handwritten, False,
        Catalog("features", 2000, 10, _HANDWRITTEN_DIMS, (1600, 400)),
    ),  # fmt: skip
    "handwritten-tmc": DatasetInfo(
        "handwritten-tmc", "UCI mfeat digits, 6 views, TMC ICLR 2021 split", _handwritten_tmc,
        catalog=Catalog("features", 2000, 10, _HANDWRITTEN_DIMS, (1600, 400)), folder="handwritten",
    ),  # fmt: skip
    "cub": DatasetInfo(
        "cub", "CUB-200 10 classes, GoogLeNet image + doc2vec text", _cub,
        catalog=Catalog("features", 600, 10, (("img", 1024), ("txt", 300)), (480, 120)),
    ),  # fmt: skip
    "pie": DatasetInfo(
        "pie", "CMU PIE faces, 68 subjects, 3 views", _pie,
        catalog=Catalog("features", 680, 68, (("intensity", 484), ("lbp", 256), ("gabor", 279)), (544, 136)),
    ),  # fmt: skip
    "wikipedia": DatasetInfo(
        "wikipedia", "Wikipedia image-text, SIFT-BoW + LDA", _wikipedia,
        catalog=Catalog("features", 2866, 10, (("img", 128), ("txt", 10)), (2173, 693)),
    ),  # fmt: skip
    "avmnist": DatasetInfo(
        "avmnist", "raw MNIST image + FSDD spoken digit (end-to-end)", _avmnist,
        catalog=Catalog("raw", 10000, 10, (("image", 784), ("audio", 8000)), (8000, 2000)),
    ),  # fmt: skip
    "mosi": DatasetInfo(
        "mosi", "CMU-MOSI sentiment regression, text/audio/video, speaker-independent",
        _mosi("features", "speaker"), catalog=Catalog("features", 2199, 1, _mosi_dims(100), _MOSI_SPLIT),
    ),  # fmt: skip
    "mosi-minilm": DatasetInfo(
        "mosi-minilm", "CMU-MOSI with MiniLM transcript embeddings as text ([text] extra)",
        _mosi("minilm", "speaker"), catalog=Catalog("features", 2199, 1, _mosi_dims(384), _MOSI_SPLIT),
        folder="mosi",
    ),  # fmt: skip
    "mosi-text": DatasetInfo(
        "mosi-text",
        "CMU-MOSI raw transcripts (MiniLM fine-tuned end to end, [text] extra) + audio/video vectors",
        _mosi_text, catalog=Catalog("raw", 2199, 1, _mosi_dims(256), _MOSI_SPLIT), folder="mosi",
    ),  # fmt: skip
    "mosi-cmu-standard": DatasetInfo(
        "mosi-cmu-standard", "CMU-MOSI on the leaky CMU standard folds (warns; never report)",
        _mosi("features", "cmu-standard"),
        catalog=Catalog("features", 2199, 1, _mosi_dims(100), (1284, 229, 686)), folder="mosi",
    ),  # fmt: skip
}


def dataset_availability(info: DatasetInfo, data_root: str | os.PathLike | None = None) -> str:
    """'' when the dataset's folder is there (checked without loading), else why it is unavailable."""
    if not info.needs_root:
        return ""
    root = default_data_root(data_root)
    if root is None:
        return f"needs a data root: pass --data-root or set ${DATA_ENV}"
    folder = root / (info.folder or info.name)
    return "" if folder.is_dir() else f"{folder} not found"


def load_dataset(
    name_or_path: str | os.PathLike, data_root: str | os.PathLike | None = None
) -> MultimodalData:
    """Load a built-in dataset by name, or a `.npz` / `.mat` file or `.csv` / `.jsonl` manifest by path.

    Manifests and `avmnist` give a `RawMultimodalData` (decoded lazily, trained end-to-end).
    """
    key = str(name_or_path)
    if key in DATASETS:
        info = DATASETS[key]
        root = default_data_root(data_root)
        return info.loader(root)
    path = Path(key)
    if path.suffix.lower() == ".npz":
        return load_npz(path)
    if path.suffix.lower() == ".mat":
        return load_mat(path)
    if path.suffix.lower() in (".csv", ".jsonl"):
        from pmrfusion.data.manifest import load_manifest

        return load_manifest(path)
    if path.exists():
        raise PMRFusionError(f"unsupported dataset file type '{path.suffix}': use .npz, .mat, .csv or .jsonl")
    raise PMRFusionError(
        f"unknown dataset '{key}': use one of {', '.join(DATASETS)} or a path to a .npz/.mat file"
    )


def require_feature_vectors(data: MultimodalData, name: str, command: str) -> MultimodalData:
    """`data` if it holds feature vectors; one clear error if it holds raw files (trained with encoders)."""
    from pmrfusion.data.raw import RawMultimodalData

    if isinstance(data, RawMultimodalData):
        kinds = ", ".join(f"{m}={k}" for m, k in data.kinds.items())
        raise PMRFusionError(
            f"dataset '{name}' holds raw inputs ({kinds}); {command} works on feature vectors only: "
            "use `pmrfusion bench`, `train` or `eval` (they train modality encoders)"
        )
    return data


def load_feature_dataset(
    name_or_path: str | os.PathLike, command: str, data_root: str | os.PathLike | None = None
) -> MultimodalData:
    """`load_dataset` for the commands that need feature vectors; a raw dataset is refused in one line."""
    return require_feature_vectors(load_dataset(name_or_path, data_root), str(name_or_path), command)


def available_datasets(
    data_root: str | os.PathLike | None = None,
) -> list[tuple[DatasetInfo, MultimodalData | str]]:
    """Every built-in dataset with its loaded data, or the reason it is unavailable (loads them all:
    for a listing, `DatasetInfo.catalog` + `dataset_availability` read nothing)."""
    out = []
    for info in DATASETS.values():
        try:
            out.append((info, load_dataset(info.name, data_root)))
        except PMRFusionError as e:
            out.append((info, str(e)))
    return out
