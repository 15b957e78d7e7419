import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the sample data: $HRNET_SHARED_DATA, else the shared/data folder beside the checkout (exported for the
#: code under test, which never guesses where a checkout keeps it)
SHARED_DATA = Path(os.environ.setdefault("HRNET_SHARED_DATA", str(REPO.parent / "shared" / "data")))
SHARED_REFERENCE = REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared sample data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    if not SHARED_REFERENCE.is_dir():
        pytest.skip(f"shared reference not found at {SHARED_REFERENCE}")
    return SHARED_REFERENCE


@pytest.fixture
def single_torch_thread():
    """Tests of tiny models run fastest, and immune to a busy machine, on one torch thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
