"""pytest plugin for stellarai's own test suite (loaded by ``-p`` in ``setup.cfg``).

It applies to every collected item: the tests in ``tests/``, the doctests of the modules
and the runnable documentation pages in ``docs/``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> Iterator[None]:
    """Run the suite on one torch thread.

    The tests use small models and tensors; on a machine whose two CPUs are shared with
    other jobs, torch's parallel regions wait for descheduled threads and run 10-1000 times
    slower than on one thread.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
