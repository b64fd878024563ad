"""Time the offline synthesizer (``stellarai.synth``): spectra per second and scaling.

Cases (labels drawn uniformly from the synthesizer's default label space, seeded):

1. the goal: ``--n`` spectra (1,000) × ``--pixels`` pixels (20,000; uniform in ln λ over
   the HPF band, 8100–12800 Å) with the built-in line list (about 3,000 lines), float64
   and float32;
2. time against the number of lines (a quarter, half, all of the list) and of pixels
   (a quarter to twice the goal, with the automatic sub-pixels; and 40,000 to 160,000
   pixels with one sub-pixel each) on ``--n-scaling`` spectra;
3. sparse windows against dense evaluation (every line at every sub-pixel), on a
   smaller case so that the dense run fits in memory: their ratio, and their largest
   difference at the default tolerance.

Only ``Synthesizer.flux`` is timed (under ``torch.no_grad``), after one warm-up call; the
line list and the synthesizer are built beforehand.

OpenMP threads that spin while waiting make torch slower, not faster, on a machine shared
with other jobs; unless ``OMP_WAIT_POLICY`` is already set, this script sets it to
``PASSIVE`` before importing torch.

Usage::

    python benchmarks/synth_speed.py [--n 1000] [--pixels 20000] [--threads N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import astropy.units as u  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from stellarai.synth import LineList, Synthesizer  # noqa: E402

BAND = (8100.0, 12800.0)  # HPF, Angstrom


def resolving_power_for(pixels: int, band: tuple[float, float] = BAND) -> float:
    """R such that a log-uniform grid over ``band`` has ``pixels`` pixels (n = 1)."""
    return (pixels - 1) / np.log(band[1] / band[0])


def timed(call: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one call, after a warm-up call on the same input."""
    call()
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def describe_machine() -> str:
    names = [line.split(":", 1)[1].strip() for line in
             Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")
             ] if Path("/proc/cpuinfo").exists() else []
    return (f"{platform.system()} {platform.release()} {platform.machine()}; "
            f"{names[0] if names else platform.processor()}; {os.cpu_count()} CPUs; "
            f"Python {platform.python_version()}; torch {torch.__version__} "
            f"({torch.get_num_threads()} thread(s), OMP_WAIT_POLICY="
            f"{os.environ.get('OMP_WAIT_POLICY')}); numpy {np.__version__}")


def make_labels(synth: Synthesizer, n: int) -> torch.Tensor:
    table = synth.label_space.random(n, seed=0)
    return torch.from_numpy(synth.label_space.parse_batch(table))


def run_flux(synth: Synthesizer, labels: torch.Tensor, **kwargs: object) -> torch.Tensor:
    with torch.no_grad():
        return synth.flux(labels, progress=False, **kwargs)


def goal(lines: LineList, n: int, pixels: int) -> None:
    print(f"\n1. {n} spectra x {pixels} pixels, {BAND[0]:.0f}-{BAND[1]:.0f} Angstrom, "
          f"{len(lines)} lines")
    print(f"{'dtype':<9} {'seconds':>9} {'CPU s':>8} {'spectra/s':>10} {'ms/spectrum':>12}")
    for dtype in (torch.float64, torch.float32):
        synth = Synthesizer(lines, list(BAND) * u.AA, resolving_power=resolving_power_for(pixels),
                            dtype=dtype)
        labels = make_labels(synth, n)
        wall, cpu = timed(lambda s=synth, x=labels: run_flux(s, x))
        print(f"{str(dtype).split('.')[-1]:<9} {wall:>9.1f} {cpu:>8.1f} {n / wall:>10.1f} "
              f"{1e3 * wall / n:>12.2f}")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
          " MB")


def scaling(lines: LineList, n: int, pixels: int) -> None:
    print(f"\n2. scaling, {n} spectra (float64): time per spectrum")
    print(f"{'lines':>7} {'pixels':>7} {'sub-pixels':>11} {'ms/spectrum':>12}")
    rng = np.random.default_rng(1)
    cases = []
    for fraction in (0.25, 0.5, 1.0):
        keep = np.sort(rng.choice(len(lines), int(fraction * len(lines)), replace=False))
        cases.append((lines[keep], pixels, None))
    for factor in (0.25, 0.5, 2.0):
        cases.append((lines, int(pixels * factor), None))
    for npix in (40_000, 80_000, 160_000):  # one sub-pixel: cost against pixels alone
        cases.append((lines, npix, 1))
    for subset, npix, oversample in cases:
        synth = Synthesizer(subset, list(BAND) * u.AA, resolving_power=resolving_power_for(npix),
                            oversample=oversample)
        labels = make_labels(synth, n)
        sub = "auto" if oversample is None else str(oversample)
        if oversample is None:
            sub = f"{np.mean(synth.sub_pixels(labels)):.1f} (auto)"
        wall, _ = timed(lambda s=synth, x=labels: run_flux(s, x))
        print(f"{len(synth.linelist):>7} {synth.wavelength.size:>7} {sub:>11} "
              f"{1e3 * wall / n:>12.2f}")


def sparse_vs_dense(lines: LineList, n: int) -> None:
    band = (10000.0, 11200.0)
    synth = Synthesizer(lines, list(band) * u.AA, resolving_power=resolving_power_for(20_000))
    labels = make_labels(synth, n)
    sparse_s, _ = timed(lambda: run_flux(synth, labels))
    dense_s, _ = timed(lambda: run_flux(synth, labels, dense=True))
    difference = float((run_flux(synth, labels) - run_flux(synth, labels, dense=True)
                        ).abs().max())
    print(f"\n3. sparse windows vs dense evaluation: {n} spectra x {synth.wavelength.size} "
          f"pixels, {band[0]:.0f}-{band[1]:.0f} Angstrom, {len(synth.linelist)} lines")
    print(f"sparse {1e3 * sparse_s / n:.2f} ms/spectrum, dense {1e3 * dense_s / n:.2f} "
          f"ms/spectrum: dense/sparse = {dense_s / sparse_s:.0f}x; largest |difference| "
          f"{difference:.1e} (tolerance {synth.tolerance:g})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="spectra in case 1 (1000)")
    parser.add_argument("--pixels", type=int, default=20_000, help="pixels in case 1 (20000)")
    parser.add_argument("--n-scaling", type=int, default=100,
                        help="spectra in the scaling runs (100)")
    parser.add_argument("--n-dense", type=int, default=10,
                        help="spectra in the sparse/dense comparison (10)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's default)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 50 spectra, 10 in the scaling runs, 3 dense")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.n, args.n_scaling, args.n_dense = 50, 10, 3
    lines = LineList.default([BAND[0] - 30, BAND[1] + 30] * u.AA)
    print(f"machine: {describe_machine()}")
    goal(lines, args.n, args.pixels)
    scaling(lines, args.n_scaling, args.pixels)
    sparse_vs_dense(lines, args.n_dense)


if __name__ == "__main__":
    main()
