"""Shared fixtures: paths to the real spectra in ``../shared/data`` (skipped where absent)."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HPF_FILES = sorted((SHARED_DATA / "hpf").glob("Goldilocks_*.spectra.fits"))
IGRINS_FILE = SHARED_DATA / "igrins" / "SDCH_20201202_0059.spec_a0v.fits"


@pytest.fixture
def hpf_files():
    """The three real HPF Goldilocks files (skips when ../shared/data is absent)."""
    if not HPF_FILES:
        pytest.skip(f"real HPF spectra not found in {SHARED_DATA / 'hpf'} (../shared absent)")
    return HPF_FILES


@pytest.fixture
def igrins_file():
    """The real IGRINS H-band file in the old PLP layout (skips when absent)."""
    if not IGRINS_FILE.exists():
        pytest.skip(f"real IGRINS spectrum not found at {IGRINS_FILE} (../shared absent)")
    return IGRINS_FILE
