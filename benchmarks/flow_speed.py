"""Training time and log-likelihood throughput of a SpectralFlow (and its outlier AUCs).

Trains a neural spline flow (``stellarai.flows.SpectralFlow``, 12 PCA components, 3
transforms of 64 x 64 hidden units, conditioned on Teff and log g) on ``--train`` spectra
of ``stellarai.flows.toy.ToyStars`` (1500 px), then reports:

- training time (seconds, per epoch, and training spectra per second: spectra x epochs
  over the wall time, validation passes included);
- log-likelihood throughput: spectra per second through ``SpectralFlow.log_prob`` for
  arrays already on the flow's grid, and for a ``SpectrumList`` that is resampled (best of
  5 runs over ``--eval`` spectra);
- ROC AUC of ``outlier_scores`` (and of each of its two terms) for three anomalies against
  300 normal held-out spectra: [Mg/H] = +1.5 (training stops at +0.5), one unlisted line of
  central optical depth 0.1, and a hot star (metals x 0.1, strong broad hydrogen) given a
  cool star's labels.

Usage::

    python benchmarks/flow_speed.py [--threads 1] [--train 1500] [--eval 2000] [--epochs 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import astropy.units as u
import numpy as np
import torch
from specutils import Spectrum, SpectrumList

import stellarai
from stellarai.flows import SpectralFlow, roc_auc
from stellarai.flows.toy import ToyStars


def best_rate(function: object, n: int, repeats: int = 5) -> float:
    """Spectra per second, best of ``repeats`` calls."""
    best = np.inf
    for _ in range(repeats):
        tic = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - tic)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train", type=int, default=1500)
    parser.add_argument("--eval", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"stellarai {stellarai.__version__}, torch {torch.__version__}, "
          f"Python {platform.python_version()}, {platform.platform()}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch thread(s)")

    toy = ToyStars()
    grid = toy.grid(args.train, seed=0)
    flow = SpectralFlow(n_components=12, conditional_on=("teff", "logg"), transforms=3,
                        hidden_features=(64, 64))
    tic = time.perf_counter()
    history = flow.fit(grid, epochs=args.epochs, batch_size=128, lr=3e-3, seed=0,
                       progress=False)
    seconds = time.perf_counter() - tic
    n_fit = flow.provenance["n_train"]
    print(f"training: {seconds:.1f} s for {history.epochs} epochs "
          f"({seconds / history.epochs:.2f} s/epoch, {n_fit} training + "
          f"{flow.provenance['n_valid']} validation spectra, "
          f"{n_fit * history.epochs / seconds:,.0f} training spectra/s)")

    labels = toy.labels(args.eval, seed=3)
    flux = toy.flux(labels, seed=4)
    kwargs = {"teff": labels[:, 0], "logg": labels[:, 1]}
    rate = best_rate(lambda: flow.log_prob(flux, **kwargs), args.eval)
    print(f"log_prob, arrays on the grid: {rate:,.0f} spectra/s")
    n_list = min(args.eval, 200)
    spectra = SpectrumList([Spectrum(flux=f * u.one, spectral_axis=toy.wavelength)
                            for f in flux[:n_list]])
    small = {k: v[:n_list] for k, v in kwargs.items()}
    rate = best_rate(lambda: flow.log_prob(spectra, **small), n_list, repeats=3)
    print(f"log_prob, SpectrumList through the boundary layer: {rate:,.0f} spectra/s")

    def parts(f: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        table = flow.log_prob(f, teff=y[:, 0], logg=y[:, 1])
        return (-np.asarray(table["log_prob"]), np.log(table["reconstruction_rms"].value),
                flow.outlier_scores(f, teff=y[:, 0], logg=y[:, 1]))

    normal_labels = toy.labels(300, seed=10)
    normal = parts(toy.flux(normal_labels, seed=11), normal_labels)
    cases = {
        "[Mg/H] = +1.5": (toy.labels(100, seed=20, mg_h=1.5), {"seed": 21}),
        "unlisted line": (toy.labels(100, seed=30),
                          {"seed": 31, "extra_lines": toy.free_wavelengths[5],
                           "extra_depth": 0.1}),
        "hot star": (toy.labels(100, seed=40),
                     {"seed": 41, "metals": 0.1, "hydrogen": 4.0, "hydrogen_width": 4.0}),
    }
    print("ROC AUC            -log p   log rms   combined")
    for name, (y, options) in cases.items():
        anomalous = parts(toy.flux(y, **options), y)
        aucs = [roc_auc(a, b) for a, b in zip(normal, anomalous, strict=True)]
        print(f"{name:<18} {aucs[0]:7.3f}   {aucs[1]:7.3f}   {aucs[2]:8.3f}")


if __name__ == "__main__":
    main()
