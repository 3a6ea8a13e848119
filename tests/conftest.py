import os

# Subprocesses started by tests (CLI, torchrun) inherit this: one OpenMP thread each, so a
# busy machine cannot stall them in thread barriers. In-process tests use 2 threads below.
os.environ["OMP_NUM_THREADS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from pmrfusion.data.loaders import default_data_root  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def data_root():
    root = default_data_root()
    if root is None or not (root / "cub").is_dir():
        pytest.skip("../shared/data not available")
    return root
