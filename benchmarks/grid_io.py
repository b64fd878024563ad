"""Time SpectralGrid HDF5 I/O: writing, eager reading, and lazy batch reading for training.

A grid of ``--n`` random spectra x ``--pix`` pixels (float32) is written without and with
gzip compression, read back eagerly, and read lazily the way a training loop does: a
shuffled `torch.utils.data.DataLoader` over ``grid.dataset()`` with ``--batch`` spectra per
batch, and sequential batches (as for validation). Reported: seconds, MB/s of flux and
spectra per second.

Usage::

    python benchmarks/grid_io.py [--n 2048] [--pix 20000] [--batch 64] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import torch

from stellarai.grids import SpectralGrid
from stellarai.labels import LabelSpace


def make_grid(n: int, n_pix: int) -> SpectralGrid:
    rng = np.random.default_rng(0)
    space = LabelSpace.default().subset(["teff", "logg", "feh"])
    labels = space.to_table(space.lower + rng.random((n, 3)) * (space.upper - space.lower))
    flux = (1.0 - 0.3 * rng.random((n, n_pix))).astype(np.float32)
    return SpectralGrid(np.linspace(15000.0, 17000.0, n_pix) * u.AA, flux, labels, space)


def timed(action) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def loader_seconds(grid: SpectralGrid, batch: int, shuffle: bool) -> float:
    loader = torch.utils.data.DataLoader(grid.dataset(), batch_size=batch, shuffle=shuffle,
                                         generator=torch.Generator().manual_seed(0))
    seconds, _ = timed(lambda: sum(len(flux) for _, flux in loader))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--pix", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    grid = make_grid(args.n, args.pix)
    megabytes = grid.flux.nbytes / 1e6
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}: "
          f"{args.n} spectra x {args.pix} px float32 = {megabytes:.0f} MB of flux")
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for compression in (None, "gzip"):
            path = Path(folder) / f"grid-{compression}.h5"
            write, _ = timed(lambda path=path, c=compression: grid.write(path, compression=c))
            size = path.stat().st_size / 1e6
            read, _ = timed(lambda path=path: SpectralGrid.read(path))
            with SpectralGrid.read(path, lazy=True) as lazy:
                shuffled = loader_seconds(lazy, args.batch, shuffle=True)
                ordered = loader_seconds(lazy, args.batch, shuffle=False)
            in_memory = loader_seconds(grid, args.batch, shuffle=True)
            name = compression or "none"
            print(f"compression {name:>4}: file {size:7.0f} MB | write {write:6.2f} s "
                  f"({megabytes / write:6.0f} MB/s) | eager read {read:6.2f} s "
                  f"({megabytes / read:6.0f} MB/s)")
            for label, seconds in [("lazy, shuffled", shuffled), ("lazy, in order", ordered),
                                   ("in memory, shuffled", in_memory)]:
                print(f"    {label:<20} {seconds:6.2f} s per epoch, "
                      f"{args.n / seconds:8.0f} spectra/s, {megabytes / seconds:6.0f} MB/s")


if __name__ == "__main__":
    main()
