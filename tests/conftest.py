import pytest
import torch

from pmrfusion.data.loaders import default_data_root

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def data_root():
    root = default_data_root()
    if root is None or not (root / "cub").is_dir():
        pytest.skip("../shared/data not available")
    return root
