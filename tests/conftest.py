"""Suite-wide settings: one PyTorch thread per test process.

`make test` runs two pytest workers on a two-core machine; with PyTorch's default two threads each,
small convolutions oversubscribe the cores and run many times slower.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
