from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def single_torch_thread():
    """The pose tests run tiny models, for which one thread is fastest and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
