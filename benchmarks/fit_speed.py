"""Time fits of simulated HPF observations: one full fit, and fit_many's throughput.

1. One joint fit of a simulated 28-order HPF observation (2,048 pixels per order, the
   default emulator, the full operator chain
   ``emu | Rotation | Doppler * Telluric.from_muler("hpf") | Instrument(55,000)``,
   a quadratic continuum per order), with the fitter's default starts and the Laplace
   uncertainties. Goal: under 60 s on the 2-core development machine.
2. Throughput of :func:`stellarai.fitting.many.fit_many` in spectra per minute on a batch of
   smaller simulated observations (``--many-orders``), in this process (no dask), and
   on a dask ``LocalCluster`` of 1 and of 2 single-threaded worker processes (their
   start-up timed apart), all in the same run so that their ratio is meaningful on a
   shared machine.

Usage::

    python benchmarks/fit_speed.py [--threads 1] [--orders 0 ... 27] [--n-spectra 12]
        [--many-orders 19] [--chunk-size 4] [--write docs/includes/bench_fitting.rst]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import torch

import stellarai
from stellarai.emulators import load
from stellarai.fitting import fit
from stellarai.fitting.cli import build_model
from stellarai.fitting.many import fit_many, local_client
from stellarai.fitting.simulate import simulate_hpf_observation

TRUTH = {"labels": {"teff": 5200 * u.K, "logg": 4.5, "feh": -0.2, "vmic": 1.1 * u.km / u.s},
         "rv": -9.6 * u.km / u.s, "vsini": 6 * u.km / u.s, "telluric_strength": 1.2}


def machine_line(threads: int) -> str:
    return (f"{platform.system()} {platform.release()} {platform.machine()}, "
            f"{os.cpu_count()} CPUs (shared with other jobs; load average "
            f"{os.getloadavg()[0]:.1f} at the start), Python {platform.python_version()}, "
            f"torch {torch.__version__} ({threads} thread), stellarai {stellarai.__version__}")


def full_fit(orders: list[int], starts: int | None) -> tuple[float, float, object]:
    emulator = load("default")
    data, _ = simulate_hpf_observation(TRUTH["labels"], rv=TRUTH["rv"], vsini=TRUTH["vsini"],
                                       telluric_strength=TRUTH["telluric_strength"],
                                       orders=orders, emulator=emulator, seed=0)
    model = build_model(emulator, data)
    options = {} if starts is None else {"starts": starts}
    begin, cpu = time.perf_counter(), time.process_time()
    result = fit(model, data, progress=False, **options)
    return time.perf_counter() - begin, time.process_time() - cpu, result


def _warm_worker() -> None:
    """Import what a fit needs on a worker (part of the cluster's start-up)."""
    import stellarai.fitting.many  # noqa: F401

    torch.set_num_threads(1)


def throughput(n_spectra: int, orders: list[int], chunk_size: int, starts: int | None
               ) -> list[tuple[str, float, float, float]]:
    """(run, start-up seconds, spectra per minute after start-up, max difference)."""

    emulator = load("default")
    spectra = [simulate_hpf_observation(TRUTH["labels"], rv=TRUTH["rv"] + i * u.km / u.s,
                                        vsini=TRUTH["vsini"],
                                        telluric_strength=TRUTH["telluric_strength"],
                                        orders=orders, emulator=emulator, seed=i)[0]
               for i in range(n_spectra)]
    model = build_model(emulator, spectra[0])
    options = {"progress": False, "chunk_size": chunk_size}
    if starts is not None:
        options["starts"] = starts
    rows = []
    reference = None
    for label, workers in (("this process (no dask)", 0), ("LocalCluster, 1 worker", 1),
                           ("LocalCluster, 2 workers", 2)):
        load_average = os.getloadavg()[0]
        begin = time.perf_counter()
        if workers == 0:
            startup = 0.0
            results = fit_many(spectra, model, **options)
            seconds = time.perf_counter() - begin
        else:
            with local_client(workers) as client:
                client.run(_warm_worker)
                startup = time.perf_counter() - begin
                begin = time.perf_counter()
                results = fit_many(spectra, model, client=client, **options)
                seconds = time.perf_counter() - begin
        values = np.array([[float(v) for v in r.table["value"]] for r in results])
        if reference is None:
            reference = values
        same = float(np.max(np.abs(values - reference)))
        rows.append((label, startup, 60 * n_spectra / seconds, same))
        print(f"  {label:<26} start-up {startup:5.1f} s, fits {seconds:6.1f} s: "
              f"{60 * n_spectra / seconds:6.2f} spectra/min, max |difference| from the "
              f"no-dask run {same:.2g} (load average {load_average:.1f})", flush=True)
    return rows


def write_rst(path: Path, command: str, machine: str, orders: list[int], seconds: float,
              cpu: float, result: object, n_spectra: int, many_orders: list[int], chunk_size: int,
              rows: list[tuple[str, float, float, float]]) -> None:
    per_minute = {label: rate for label, _, rate, _ in rows}
    ratio = per_minute["LocalCluster, 2 workers"] / per_minute["LocalCluster, 1 worker"]
    lines = [
        "Fitting: one HPF observation, and many",
        "=======================================",
        "",
        "Measured in one run of",
        "",
        ".. code-block:: bash",
        "",
        f"    {command}",
        "",
        f"Machine: {machine}.",
        "",
        f"**One full fit.** A simulated HPF observation of {len(orders)} orders x 2,048 "
        "pixels (:func:`~stellarai.fitting.simulate.simulate_hpf_observation`: default "
        "emulator, Teff 5,200 K, log g 4.5, [Fe/H] -0.2, vmic 1.1 km/s, vsini 6 km/s, "
        "rv -9.6 km/s, muler's TelFit telluric template at strength 1.2, R = 55,000, SNR "
        "100, a quadratic continuum per order), fitted jointly with "
        "``fit(emu | Rotation() | Doppler() * Telluric.from_muler(\"hpf\") | "
        "Instrument(resolving_power=55_000), data)`` (default starts, Laplace "
        f"uncertainties): **{seconds:.1f} s** wall-clock, {cpu:.1f} s of CPU time (goal: "
        "under 60 s; on the shared machine the CPU time is the better measure of what an "
        "idle machine would take); the fit "
        f"{'converged' if getattr(result, 'converged', False) else 'did NOT converge'}.",
        "",
        f"**Throughput of fit_many** on {n_spectra} simulated observations of "
        f"{len(many_orders)} order(s) each (HPF order(s) "
        f"{', '.join(map(str, many_orders))}), "
        f"chunks of {chunk_size}. For the dask runs the cluster is started (and its "
        "workers have imported stellarai) before the fits are timed; that start-up is given "
        "apart, it is paid once per cluster. The last column checks that every run gives "
        "the same parameters as the run without dask.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - Run",
        "     - Cluster start-up (s)",
        "     - Spectra per minute",
        "     - Max. difference from the run without dask",
    ]
    for label, startup, rate, same in rows:
        lines += [f"   * - {label}", f"     - {startup:.1f}" if startup else "     - --",
                  f"     - {rate:.2f}", f"     - {same:.2g}"]
    lines += [
        "",
        f"Two workers against one: **{ratio:.2f} x** the throughput. The machine's two "
        "CPUs were shared with other jobs during the run, so the absolute figures are "
        "pessimistic and the ratio is the figure to read.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--orders", type=int, nargs="+", default=list(range(28)),
                        help="HPF orders of the full fit (default: all 28)")
    parser.add_argument("--n-spectra", type=int, default=12,
                        help="observations for the throughput runs (default 12)")
    parser.add_argument("--many-orders", type=int, nargs="+", default=[19],
                        help="HPF orders of each throughput observation (default 19)")
    parser.add_argument("--chunk-size", type=int, default=4, help="fit_many chunk size")
    parser.add_argument("--starts", type=int, default=None,
                        help="optimizer starts (default: the fitter's)")
    parser.add_argument("--write", type=Path, metavar="RST", help="write the RST include")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    machine = machine_line(args.threads)
    print(machine)
    begin = time.perf_counter()
    seconds, cpu, result = full_fit(args.orders, args.starts)
    print(f"full fit of {len(args.orders)} orders: {seconds:.1f} s ({cpu:.1f} s CPU), converged "
          f"{getattr(result, 'converged', None)}")
    print(result.table)
    print(f"fit_many throughput, {args.n_spectra} spectra of orders {args.many_orders}:")
    rows = throughput(args.n_spectra, args.many_orders, args.chunk_size, args.starts)
    print(f"total {time.perf_counter() - begin:.0f} s")
    if args.write is not None:
        command = "python benchmarks/fit_speed.py " + " ".join(
            a for a in (argv if argv is not None else __import__("sys").argv[1:]))
        write_rst(args.write, command.strip(), machine, args.orders, seconds, cpu, result,
                  args.n_spectra, args.many_orders, args.chunk_size, rows)


if __name__ == "__main__":
    main()
