"""The datasets' catalog (what `pmrfusion datasets` lists without loading) is what loading gives."""

import time

import pytest

from pmrfusion.data.loaders import DATASETS, dataset_availability, load_dataset
from tests.cli.cli_helpers import run_main


def _listed(data):
    kind = "raw" if hasattr(data, "kinds") else "features"
    dims = tuple(data.dims.items())
    split = tuple(len(v) for v in data.splits.values())
    return kind, data.num_samples, data.num_classes, dims, split


@pytest.mark.parametrize("name", ["handwritten", "cub", "pie", "wikipedia"])
def test_the_catalog_matches_the_loaded_data(name):
    info = DATASETS[name]
    if dataset_availability(info):
        pytest.skip(f"{name}: {dataset_availability(info)}")
    c = info.catalog
    assert (c.kind, c.samples, c.classes, c.modalities, c.split) == _listed(load_dataset(name))


def test_every_builtin_has_a_catalog_entry():
    assert all(info.catalog is not None for info in DATASETS.values())


def test_the_listing_loads_nothing(monkeypatch, capsys):
    def refuse(root):
        raise AssertionError("a dataset was loaded")

    for name, info in DATASETS.items():
        monkeypatch.setitem(DATASETS, name, type(info)(**{**info.__dict__, "loader": refuse}))
    start = time.perf_counter()
    code, out = run_main(["datasets"], capsys, with_stdout=True)
    assert code == 0, out
    assert time.perf_counter() - start < 2.0
    assert "2000" in out and "10000" in out and "68" in out
