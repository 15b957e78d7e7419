from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _pose_tests_on_one_thread(single_torch_thread):
    """The pose tests run tiny models (see the shared ``single_torch_thread``)."""
