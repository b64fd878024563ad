"""Time stellarai's torch resamplers against specutils' resamplers on HPF-shaped spectra.

Each spectrum is resampled onto its own wavelength grid Doppler-shifted by ``--rv`` km/s
(a fraction of a pixel, as in a radial-velocity fit), propagating the uncertainties:

- flux-conserving: ``specutils.manipulation.FluxConservingResampler`` against
  ``stellarai.spectra.resample.rebin_flux_conserving`` (with ``ivar``);
- linear: ``specutils.manipulation.LinearInterpolatedResampler`` (which interpolates the
  uncertainty too) against ``stellarai.spectra.resample.interpolate_linear`` on the flux
  and the uncertainty stacked as a batch.

Cases: one 2,048-pixel order, and all 28 orders of a real HPF file (``../shared/data/hpf``
next to the repository; 28 synthetic orders of the same shape if it is absent). specutils
loops over the orders; stellarai makes one batched call. Only the resampling call is
timed: building the ``Spectrum`` objects and the tensors happens once, before timing.

Usage::

    python benchmarks/resample_speed.py [--repeat 5] [--rv 0.7] [--file PATH] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import specutils
import torch
from _timing import best_time
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from specutils import Spectrum
from specutils.manipulation import FluxConservingResampler, LinearInterpolatedResampler

from stellarai.spectra.resample import interpolate_linear, rebin_flux_conserving

C_KMS = 299_792.458
REPO_ROOT = Path(__file__).resolve().parents[1]
HPF_DIR = REPO_ROOT.parent / "shared" / "data" / "hpf"


# --------------------------------------------------------------------------------- inputs


def load_orders(path: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Wavelength (Angstrom), flux and uncertainty, each (28, 2048) float64, and a label."""
    if path is None:
        files = sorted(HPF_DIR.glob("Goldilocks_*.spectra.fits"))
        path = files[0] if files else None
    if path is None:
        return (*synthetic_orders(), "28 synthetic orders (no HPF file found)")
    with fits.open(path) as hdus:
        arrays = [np.asarray(hdus[name].data, dtype=np.float64)
                  for name in ("Sci Wavl", "Sci Flux", "Sci Error")]
    return (*arrays, f"HPF {path.name}")


def synthetic_orders(n_orders: int = 28, n_pixels: int = 2048):
    """HPF-like orders: log-uniform grids of 1.9 km/s per pixel, absorption lines, noise."""
    rng = np.random.default_rng(42)
    start = 8_100.0 * 1.0125 ** np.arange(n_orders)
    wavelength = start[:, None] * np.exp(np.arange(n_pixels) / 160_000.0)[None, :]
    flux = np.ones_like(wavelength)
    for centre in rng.uniform(wavelength[:, :1], wavelength[:, -1:], (n_orders, 40)).T:
        flux -= 0.4 * np.exp(-0.5 * ((wavelength - centre[:, None]) / 0.1) ** 2)
    sigma = np.full_like(flux, 0.01)
    return wavelength, flux + sigma * rng.standard_normal(flux.shape), sigma


# -------------------------------------------------------------------------------- timing


def max_relative_difference(ours: np.ndarray, reference: np.ndarray,
                            compare: np.ndarray | bool = True) -> float:
    """Largest |ours - reference| / |reference| where ``compare`` and both are finite."""
    both = compare & np.isfinite(ours) & np.isfinite(reference) & (reference != 0)
    return float(np.max(np.abs(ours[both] - reference[both]) / np.abs(reference[both])))


# --------------------------------------------------------------------------------- cases


class Case:
    """One order or all orders, prepared once for both libraries."""

    def __init__(self, wavelength, flux, sigma, rv_kms):
        self.new = wavelength * (1 + rv_kms / C_KMS)
        self.spectra = [Spectrum(flux=f * u.dimensionless_unscaled, spectral_axis=w * u.AA,
                                 uncertainty=StdDevUncertainty(s))
                        for w, f, s in zip(wavelength, flux, sigma, strict=True)]
        self.new_axes = [w * u.AA for w in self.new]
        self.t_new, self.t_wavelength, self.t_flux = (
            torch.from_numpy(np.ascontiguousarray(a)) for a in (self.new, wavelength, flux))
        # pixels with a zero uncertainty (HPF marks bad pixels so) get ivar 0: no weight
        self.t_ivar = torch.from_numpy(np.divide(1.0, sigma**2, out=np.zeros_like(sigma),
                                                 where=sigma > 0))
        # specutils has no masks and uses those pixels; compare only where none contributes
        self.clean = rebin_flux_conserving(self.t_new, self.t_wavelength,
                                           torch.from_numpy((sigma <= 0) * 1.0)).flux.numpy() == 0
        self.t_flux_sigma = torch.from_numpy(np.stack([flux, sigma]))

    # specutils: a loop over orders
    def specutils_fluxc(self):
        resample = FluxConservingResampler()
        return [resample(s, a) for s, a in zip(self.spectra, self.new_axes, strict=True)]

    def specutils_linear(self):
        resample = LinearInterpolatedResampler()
        return [resample(s, a) for s, a in zip(self.spectra, self.new_axes, strict=True)]

    # stellarai: one batched call
    def stellarai_fluxc(self):
        return rebin_flux_conserving(self.t_new, self.t_wavelength, self.t_flux,
                                     ivar=self.t_ivar)

    def stellarai_linear(self):
        return interpolate_linear(self.t_new, self.t_wavelength, self.t_flux_sigma)

    def differences(self) -> dict[str, float]:
        """Max relative difference of flux and ivar (or sigma), where both are defined.

        For flux-conserving rebinning, output pixels that a zero-uncertainty input pixel
        overlaps are left out: stellarai gives those no weight, specutils averages them in.
        Both differ at the ends of the input range too (see the docstring of
        ``rebin_flux_conserving``); there the first and last 4 HPF pixels are bad anyway.
        """
        ref = self.specutils_fluxc()
        ours = self.stellarai_fluxc()
        ref_lin = self.specutils_linear()
        ours_lin = self.stellarai_linear().numpy()
        stack = np.stack
        return {
            "fluxc": max(
                max_relative_difference(ours.flux.numpy(), stack([s.flux.value for s in ref]),
                                        self.clean),
                max_relative_difference(ours.ivar.numpy(),
                                        stack([s.uncertainty.array for s in ref]), self.clean)),
            "linear": max(
                max_relative_difference(ours_lin[0], stack([s.flux.value for s in ref_lin])),
                max_relative_difference(ours_lin[1],
                                        stack([s.uncertainty.array for s in ref_lin]))),
        }


# ---------------------------------------------------------------------------------- main


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return (f"{platform.platform()}; {cpu}; {os.cpu_count()} CPUs; Python "
            f"{platform.python_version()}; torch {torch.__version__} "
            f"({torch.get_num_threads()} threads); numpy {np.__version__}; "
            f"specutils {specutils.__version__}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5,
                        help="best of at least N samples (default 5; fast calls get more "
                             "samples, for at least 1 s)")
    parser.add_argument("--rv", type=float, default=0.7,
                        help="Doppler shift of the output grid in km/s (default 0.7, "
                             "about 0.4 HPF pixel)")
    parser.add_argument("--file", type=Path, default=None,
                        help=f"HPF .spectra.fits file (default: first one in {HPF_DIR})")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's default)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    wavelength, flux, sigma, source = load_orders(args.file)
    cases = {"1 order": Case(wavelength[:1], flux[:1], sigma[:1], args.rv),
             f"{len(flux)} orders": Case(wavelength, flux, sigma, args.rv)}
    print(f"machine: {machine()}")
    print(f"data:    {source}, {flux.shape[0]} x {flux.shape[1]} px; output grid shifted by "
          f"{args.rv} km/s; best of >= {args.repeat} samples (>= 1 s per row and library)")
    header = (f"{'resampler':<16} {'case':<10} {'specutils ms':>13} {'stellarai ms':>13} "
              f"{'ratio':>8} {'max rel diff':>13}")
    print(header)
    print("-" * len(header))
    for label, case in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # specutils: 1/0 at zero errors
            differences = case.differences()
            for kind in ("fluxc", "linear"):
                slow = best_time(getattr(case, f"specutils_{kind}"), args.repeat,
                                 min_sample=0.02)
                fast = best_time(getattr(case, f"stellarai_{kind}"), args.repeat,
                                 min_sample=0.02)
                name = {"fluxc": "flux-conserving", "linear": "linear"}[kind]
                print(f"{name:<16} {label:<10} {slow * 1e3:>13.3f} {fast * 1e3:>13.3f} "
                      f"{slow / fast:>7.0f}x {differences[kind]:>13.1e}")


if __name__ == "__main__":
    main()
