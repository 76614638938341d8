import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "training"))


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module (restored afterwards). On a shared 2-core machine,
    2 OpenMP threads next to other jobs run small convolutions 6-17x slower than 1."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
