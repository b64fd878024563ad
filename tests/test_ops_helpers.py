"""Shared fixtures and helpers of the stellarai.ops tests (no tests of its own).

Import the autouse fixture explicitly in a test module to use it::

    from test_ops_helpers import one_thread  # noqa: F401 - autouse fixture
"""

import astropy.units as u
import numpy as np
import pytest
import torch

F64 = torch.float64


@pytest.fixture(autouse=True)
def one_thread():
    """Run on one torch thread, restored afterwards.

    The operator tests use small tensors; on a machine whose CPUs are busy with other
    jobs, torch's parallel regions wait for descheduled threads and run up to a
    thousand times slower than on one thread.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def two_orders(**meta):
    """Two 300-pixel orders (0.05 Angstrom pixels) near 1.08 micron, flat, in counts."""
    from specutils import Spectrum, SpectrumList

    return SpectrumList([
        Spectrum(flux=np.ones(300) * u.ct,
                 spectral_axis=(10_800 + 20 * i + 0.05 * np.arange(300)) * u.AA,
                 meta={"m": i, **meta})
        for i in range(2)])


def absorption(wavelength, centers, depth, sigma):
    """A unit continuum with Gaussian lines of one depth and width at ``centers``."""
    flux = np.ones_like(wavelength)
    for center in centers:
        flux -= depth * np.exp(-0.5 * ((wavelength - center) / sigma) ** 2)
    return flux


def gaussian_line(x, depth, center, sigma):
    """A Gaussian absorption line on a unit continuum (numpy or torch)."""
    exp = torch.exp if isinstance(x, torch.Tensor) else np.exp
    return 1 - depth * exp(-0.5 * ((x - center) / sigma) ** 2)
