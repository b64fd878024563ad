"""Tests of the "observed" domain helpers of stellarai.foundation."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest

from stellarai.emulators.toy import toy_grid
from stellarai.foundation import FoundationError, observe, perturb_linelist
from stellarai.synth import LineList


def test_observe_noise_lsf_and_continuum():
    clean = toy_grid(200, n_pix=400, seed=2)
    noisy = observe(clean, snr=50, seed=1)
    residual = np.asarray(noisy.flux) - np.asarray(clean.flux)
    assert np.std(residual) == pytest.approx(0.02, rel=0.05)
    assert np.all(noisy.ivar == 2500.0)
    broad = observe(clean, resolving_power=5_000)
    # a Gaussian LSF conserves equivalent width but makes lines shallower
    assert np.min(broad.flux) > np.min(clean.flux)
    depth = (1 - np.asarray(clean.flux)).sum(1)
    assert np.allclose((1 - np.asarray(broad.flux)).sum(1), depth, rtol=0.02)
    tilted = observe(clean, continuum=0.05, seed=3)
    ratio = np.asarray(tilted.flux) / np.asarray(clean.flux)
    assert 0.01 < np.std(ratio[:, 0] - ratio[:, -1]) < 0.3
    assert tilted.provenance["continuum"] == 0.05


def test_perturb_linelist():
    lines = LineList.default([10800, 10900] * u.AA)
    same = perturb_linelist(lines, log_gf_scatter=0.0)
    assert np.array_equal(same.log_gf, lines.log_gf)
    scattered = perturb_linelist(lines, log_gf_scatter=0.2, seed=4)
    assert np.std(scattered.log_gf - lines.log_gf) == pytest.approx(0.2, rel=0.3)
    fewer = perturb_linelist(lines, drop=0.5, seed=4)
    assert 0.3 * len(lines) < len(fewer) < 0.7 * len(lines)


def test_domain_bad_input():
    grid = toy_grid(2, n_pix=50)
    with pytest.raises(FoundationError, match="snr must be positive"):
        observe(grid, snr=0)
    with pytest.raises(FoundationError, match="grid must be a SpectralGrid"):
        observe(np.ones((2, 50)))
    lines = LineList.default([10800, 10900] * u.AA)
    with pytest.raises(FoundationError, match=r"drop must be in \[0, 1\)"):
        perturb_linelist(lines, drop=1.0)
    with pytest.raises(FoundationError, match="lines must be a LineList"):
        perturb_linelist([1, 2])
