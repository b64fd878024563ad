"""Time a full HPF forward-model chain of stellarai.ops, forward and backward.

The chain is the one a fit of an HPF spectrum runs at every step::

    (Template(star, grid) | Rotation | Doppler) * Telluric.from_muler("hpf")
        | Instrument(resolving_power=55_000) | Resample(orders)

- the star is a synthetic template (400 Gaussian lines on a flat continuum, sampled at
  0.4 km/s), put once (not timed) on a model grid made by ``model_grid_for``: one row per
  order, uniform in ln(wavelength), ``oversample`` pixels per resolution element of
  R = 55,000, with a 300 km/s margin;
- the orders are HPF's: the 28 x 2048 pixel wavelengths of the Goldilocks pipeline (read
  from muler's telluric template, which is tabulated on them), or the first N orders;
- "forward" runs the chain under ``torch.no_grad()``; "forward + backward" computes a
  chi-square against synthetic data and back-propagates it to the free parameters (vsini,
  rv, telluric strength).

Each figure is the best time per call over at least 10 samples lasting at least 2 s in all
(float64). Usage::

    python benchmarks/ops_chain.py [--threads N] [--orders 1 7 14 28] [--oversample 2.5 5 10]
"""

from __future__ import annotations

import argparse
import os
import platform

import astropy.units as u
import numpy as np
import torch
from _timing import best_time

import stellarai
from stellarai.ops import (
    Doppler,
    Instrument,
    Resample,
    Rotation,
    Telluric,
    Template,
    model_grid_for,
    read_muler_template,
)

RESOLVING_POWER = 55_000
MARGIN = 300 * u.km / u.s


def hpf_orders(n_orders: int) -> tuple[u.Quantity, np.ndarray]:
    """Wavelengths (Quantity, n_orders x 2048) of the first HPF orders, and flat fluxes."""
    (wavelength,) = read_muler_template("telfit_HPFtemplate_temp286_hum050.csv",
                                        ["wavelength_A"])
    wavelength = wavelength.reshape(28, 2048)[:n_orders].copy()
    return wavelength * u.AA, np.ones_like(wavelength)


def synthetic_star(n_lines: int = 400, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat continuum with Gaussian absorption lines, sampled at 0.4 km/s (R ~ 750,000)."""
    rng = np.random.default_rng(seed)
    step = 0.4 / 299_792.458
    wavelength = np.exp(np.arange(np.log(7_950.0), np.log(12_950.0), step))
    flux = np.ones_like(wavelength)
    centers = rng.uniform(8_000.0, 12_900.0, n_lines)
    depths = rng.uniform(0.05, 0.7, n_lines)
    widths = centers * rng.uniform(3.0, 8.0, n_lines) / 299_792.458  # 3-8 km/s sigma
    for center, depth, width in zip(centers, depths, widths, strict=True):
        near = slice(*np.searchsorted(wavelength, [center - 6 * width, center + 6 * width]))
        flux[near] -= depth * np.exp(-0.5 * ((wavelength[near] - center) / width) ** 2)
    return torch.from_numpy(wavelength), torch.from_numpy(np.clip(flux, 0.01, None))


def build(n_orders: int, oversample: float, star: tuple[torch.Tensor, torch.Tensor]):
    wavelength, flux = hpf_orders(n_orders)
    orders = (wavelength, flux)
    grid = model_grid_for(orders, RESOLVING_POWER, oversample=oversample, margin=MARGIN)
    chain = ((Template(star, grid=grid) | Rotation(vsini=4 * u.km / u.s)
              | Doppler(rv=-9.6 * u.km / u.s)) * Telluric.from_muler("hpf", strength=1.1)
             | Instrument(resolving_power=RESOLVING_POWER) | Resample(orders))
    with torch.no_grad():
        _, model = chain(None, None)
    rng = np.random.default_rng(0)
    data = model + 0.01 * torch.from_numpy(rng.standard_normal(tuple(model.shape)))
    return chain, data, int(grid.numel())


def time_chain(n_orders: int, oversample: float, star) -> tuple[int, float, float]:
    chain, data, n_model = build(n_orders, oversample, star)
    free = list(chain.free_parameters().values())

    def forward() -> None:
        with torch.no_grad():
            chain(None, None)

    def forward_backward() -> None:
        for tensor in free:
            tensor.grad = None
        _, model = chain(None, None)
        ((model - data) ** 2 * 1e4).sum().backward()

    return n_model, best_time(forward, 10, 2.0) * 1e3, best_time(forward_backward, 10, 2.0) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's default)")
    parser.add_argument("--orders", type=int, nargs="+", default=[1, 7, 14, 28])
    parser.add_argument("--oversample", type=float, nargs="+", default=[2.5, 5.0, 10.0])
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    star = synthetic_star()
    print(f"stellarai {stellarai.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), numpy {np.__version__}")
    print(f"{platform.system()} {platform.release()} {platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print("chain: (Template | Rotation | Doppler) * Telluric | Instrument | Resample, "
          f"R = {RESOLVING_POWER}, margin {MARGIN}, float64\n")
    header = (f"{'orders':>6} {'oversample':>10} {'model px':>9} {'forward ms':>11} "
              f"{'fwd+bwd ms':>11}")
    print(header)
    print("-" * len(header))
    for oversample in args.oversample:
        for n_orders in args.orders:
            n_model, forward, both = time_chain(n_orders, oversample, star)
            print(f"{n_orders:>6} {oversample:>10g} {n_model:>9} {forward:>11.1f} {both:>11.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
