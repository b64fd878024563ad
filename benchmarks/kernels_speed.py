"""Time stellarai's broadening kernels on a batch of échelle-order-sized model spectra.

The reference case is issue 4's target: 28 rows of about 20,000 pixels on a grid uniform in
ln(lambda) at R = 150,000 with 3 pixels per resolution element (0.67 km/s per pixel),
rotationally broadened with vsini = 30 km/s (a 97-tap kernel), forward and forward +
backward (gradients for the flux and a per-row vsini, as in a fit). The Gaussian
instrumental profile at R = 55,000 (33 taps) and a narrow rotation (vsini = 3 km/s, 15
taps, applied with ``conv1d``) are timed too. For comparison, PyAstronomy's
``fastRotBroad`` (one kernel, ``np.convolve``) is looped over the rows when installed. On a
machine shared with other jobs, time with ``--threads 1``: oversubscribed OpenMP threads
make the timings meaningless.

Usage::

    python benchmarks/kernels_speed.py [--repeat 20] [--pixels 20000] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import warnings
from collections.abc import Callable

import numpy as np
import torch
from _timing import best_time

from stellarai.ops.kernels import (
    gaussian_broaden,
    log_step,
    resolving_power_to_fwhm_velocity,
    rotational_broaden,
    uniform_log_grid,
)


def model_batch(n_rows: int, n_pixels: int, dtype: torch.dtype):
    """Wavelengths (float64) and fluxes ``(n_rows, n)`` with ~400 lines per row."""
    rng = np.random.default_rng(4)
    wave = uniform_log_grid(10_000.0, 10_450.0, resolving_power=150_000)[:n_pixels]
    x = np.arange(wave.numel())
    flux = np.ones((n_rows, wave.numel()))
    for row in flux:
        for centre, depth in zip(rng.uniform(0, x[-1], 400), rng.uniform(0.05, 0.8, 400),
                                 strict=True):
            lo, hi = int(centre) - 12, int(centre) + 13
            row[max(lo, 0):hi] -= depth * np.exp(-0.5 * ((x[max(lo, 0):hi] - centre) / 2.0) ** 2)
    return wave, torch.as_tensor(np.clip(flux, 0.0, 1.0), dtype=dtype)


def cases(flux: torch.Tensor, step: float) -> dict[str, Callable[[], object]]:
    rows = flux.shape[0]
    vsini = torch.full((rows,), 30.0, dtype=torch.float64, requires_grad=True)
    shared = torch.tensor(30.0, dtype=torch.float64, requires_grad=True)
    narrow = torch.full((rows,), 3.0, dtype=torch.float64, requires_grad=True)
    fwhm = resolving_power_to_fwhm_velocity(55_000)
    grad_flux = flux.clone().requires_grad_()

    def backward(out: torch.Tensor, *inputs: torch.Tensor) -> None:
        torch.autograd.grad(out.square().sum(), inputs)

    return {
        "rotation 30 km/s, forward": lambda: rotational_broaden(flux, step, 30.0),
        "rotation 30 km/s, fwd+bwd (flux, one vsini)": lambda: backward(
            rotational_broaden(grad_flux, step, shared), grad_flux, shared),
        "rotation 30 km/s, fwd+bwd (flux, vsini per row)": lambda: backward(
            rotational_broaden(grad_flux, step, vsini), grad_flux, vsini),
        "rotation 3 km/s, fwd+bwd (flux, vsini per row)": lambda: backward(
            rotational_broaden(grad_flux, step, narrow), grad_flux, narrow),
        "Gaussian R=55k, forward": lambda: gaussian_broaden(flux, step, fwhm),
        "Gaussian R=55k, fwd+bwd (flux)": lambda: backward(
            gaussian_broaden(grad_flux, step, fwhm), grad_flux),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="best of N (default 20)")
    parser.add_argument("--rows", type=int, default=28, help="rows (default 28)")
    parser.add_argument("--pixels", type=int, default=20_000, help="pixels (default 20000)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{platform.platform()}; Python {platform.python_version()}; torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads)")
    for dtype in (torch.float32, torch.float64):
        wave, flux = model_batch(args.rows, args.pixels, dtype)
        step = log_step(wave)
        print(f"\n{args.rows} x {flux.shape[1]} px, {dtype}, {3e5 * step:.3f} km/s per pixel")
        for name, call in cases(flux, step).items():
            print(f"  {name:48s} {1e3 * best_time(call, args.repeat):8.2f} ms")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from PyAstronomy import pyasl
    except ImportError:
        return
    wave, flux = model_batch(args.rows, args.pixels, torch.float64)
    w, f = wave.numpy(), flux.numpy()
    wl = np.linspace(w[0], w[-1], w.size)  # fastRotBroad needs a linear grid

    def pyastronomy() -> None:
        for row in f:
            pyasl.fastRotBroad(wl, row, 0.6, 30.0)

    print(f"\n  {'PyAstronomy fastRotBroad 30 km/s, loop':48s} "
          f"{1e3 * best_time(pyastronomy, 3, 0.5):8.2f} ms")


if __name__ == "__main__":
    main()
