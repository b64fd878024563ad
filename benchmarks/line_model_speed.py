"""Speed of stellarai.lines: one training step over the full HPF band, sparse vs dense, and
a full clone-and-fit to an HPF-like observation.

    python benchmarks/line_model_speed.py --threads 1 --write docs/includes/bench_lines.rst

Needs the blasé PHOENIX line table in ../shared/data/linelists (9,028 lines).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import torch
from astropy.nddata import StdDevUncertainty
from astropy.table import QTable
from specutils import Spectrum, SpectrumList

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_time  # noqa: E402

import stellarai.ops as ops  # noqa: E402
from stellarai.lines import LineModel, build_chain, fit_lines  # noqa: E402
from stellarai.lines.profiles import absorption  # noqa: E402

TABLE = (Path(__file__).resolve().parents[2] / "shared" / "data" / "linelists"
         / "phoenix_T4700_g4.5_HPF_blase_clone.ecsv")


def cpu_time(call, repeat: int = 5) -> float:
    """Best CPU seconds of this process per call (one thread: the uncontended time, on a
    machine whose cores are shared with other jobs)."""
    call()
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        call()
        best = min(best, time.process_time() - start)
    return best


def adam_step_timer(model: LineModel, target: torch.Tensor):
    """One forward + backward + Adam step of a squared loss on ``model``'s flux."""
    optimizer = torch.optim.Adam([model.tensors[k] for k in model.tensors], lr=1e-4)

    def step() -> None:
        optimizer.zero_grad()
        _, flux = model(None, None)
        ((flux - target) ** 2).sum().backward()
        optimizer.step()

    return step


def dense_step_timer(table: QTable, grid: torch.Tensor, target: torch.Tensor):
    """The same step with every line evaluated on every pixel (a lines x pixels matrix)."""
    params = {k: torch.tensor(np.log(table[k].to_value(u.AA)), requires_grad=True)
              for k in ("amplitude", "sigma", "gamma")}
    center = torch.tensor(table["wavelength"].to_value(u.AA), requires_grad=True)
    optimizer = torch.optim.Adam([*params.values(), center], lr=1e-4)

    def step() -> None:
        optimizer.zero_grad()
        a, s, g = (torch.exp(params[k])[:, None] for k in ("amplitude", "sigma", "gamma"))
        v = absorption(grid[None, :] - center[:, None], a, s, g)
        flux = torch.exp(torch.log1p(-v.clamp(max=1 - 1e-6)).sum(0))
        ((flux - target) ** 2).sum().backward()
        optimizer.step()

    return step


def hpf_observation(table: QTable, rng: np.random.Generator, snr: float, rv: float,
                    vsini: float) -> tuple[SpectrumList, np.ndarray]:
    """28 HPF orders (HPF's pixel wavelengths) of the table's star with 10% of the line
    areas changed by factors in [0.7, 1.3], shifted, rotated, at R = 55,000, with noise."""
    (wavelength,) = ops.read_muler_template("telfit_HPFtemplate_temp286_hum050.csv",
                                            ["wavelength_A"])
    pixels = wavelength.reshape(28, 2048)
    truth = LineModel.from_table(table)
    factor = np.ones(truth.n_lines)
    changed = rng.choice(truth.n_lines, truth.n_lines // 10, replace=False)
    factor[changed] = rng.uniform(0.7, 1.3, changed.size)
    truth.set(log_amplitude=truth.get("log_amplitude").value + np.log(factor))
    frame = SpectrumList([Spectrum(flux=np.ones(2048) * u.one, spectral_axis=p * u.AA,
                                   meta={"instrumental_resolution": 55_000.0})
                          for p in pixels])
    chain = build_chain(truth, frame, rv=rv, vsini=vsini, continuum_degree=0)
    with torch.no_grad():
        flux = chain.evaluate({})[1].numpy()
    noise = 1.0 / snr
    orders = SpectrumList([
        Spectrum(flux=(f + noise * rng.standard_normal(f.size)) * u.one,
                 spectral_axis=p * u.AA, uncertainty=StdDevUncertainty(np.full(f.size, noise)),
                 meta={"instrumental_resolution": 55_000.0})
        for f, p in zip(flux, pixels, strict=True)])
    return orders, factor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clone-steps", type=int, default=150)
    parser.add_argument("--fit-steps", type=int, default=60)
    parser.add_argument("--snr", type=float, default=200.0)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    if not TABLE.exists():
        sys.exit(f"line table not found: {TABLE}")
    begin = time.perf_counter()
    table = QTable.read(TABLE)

    # 1. one training step over the full band
    model = LineModel.from_table(table)
    with torch.no_grad():
        target = model(None, None)[1] * 0.99
    step = adam_step_timer(model, target)
    full_step = best_time(step, repeat=10, min_total=5.0)
    full_cpu = cpu_time(step, repeat=10)
    n_pix = model.grid.shape[-1]
    plan = model.plan
    print(f"full band: {model.n_lines} lines, {n_pix:,} px, {plan.n_window_pixels:,} window "
          f"elements ({plan.n_elements:,} with padding): {full_step * 1e3:.1f} ms per step "
          f"(wall), {full_cpu * 1e3:.1f} ms (CPU)")

    # 2. sparse vs dense on sub-bands
    rows = []
    for low, high in ((10_800.0, 10_850.0), (10_800.0, 11_000.0)):
        sub = table[(table["wavelength"].value > low) & (table["wavelength"].value < high)]
        sparse = LineModel.from_table(sub)
        grid = sparse.grid[0]
        with torch.no_grad():
            target = sparse(None, None)[1][0] * 0.99
        t_sparse = cpu_time(adam_step_timer(sparse, target), repeat=5)
        t_dense = cpu_time(dense_step_timer(sub, grid, target), repeat=3)
        rows.append((f"{low:.0f}-{high:.0f}", len(sub), grid.numel(),
                     len(sub) * grid.numel(), sparse.plan.n_elements, t_sparse, t_dense))
        print(f"sub-band {rows[-1][0]}: {len(sub)} lines x {grid.numel():,} px: sparse "
              f"{t_sparse * 1e3:.1f} ms, dense {t_dense * 1e3:.1f} ms, ratio "
              f"{t_dense / t_sparse:.0f}")

    # 3. clone and fit
    rng = np.random.default_rng(7)
    rv, vsini = -9.6, 6.0
    orders, factor = hpf_observation(table, rng, args.snr, rv, vsini)
    template = LineModel.from_table(table).spectrum()
    start, cpu = time.perf_counter(), time.process_time()
    clone = LineModel.from_spectrum(template, prominence=0.005, steps=args.clone_steps,
                                    progress=False)
    t_clone = (time.perf_counter() - start, time.process_time() - cpu)
    start, cpu = time.perf_counter(), time.process_time()
    fit = fit_lines(clone, orders, rv=0.0, vsini=3.0, continuum_degree=1,
                    steps=args.fit_steps, progress=False)
    t_fit = (time.perf_counter() - start, time.process_time() - cpu)
    report = clone.clone_report
    print(f"clone: {report} (CPU {t_clone[1]:.1f} s); fit: {t_fit[0]:.1f} s wall, "
          f"{t_fit[1]:.1f} s CPU, rv {fit.rv.value:.3f} (true {rv}), vsini "
          f"{fit.vsini.value:.3f} (true {vsini}), residual RMS/noise {fit.residual_rms():.3f}")
    total = time.perf_counter() - begin
    if args.write:
        write_rst(args, table, model, (full_step, full_cpu), rows, report, t_clone, t_fit, fit,
                  rv, vsini, total)


def write_rst(args, table, model, full_step, rows, report, t_clone, t_fit, fit, rv, vsini,
              total) -> None:
    plan = model.plan
    machine = (f"{platform.platform()}, {platform.machine()}, Python "
               f"{platform.python_version()}, torch {torch.__version__} ({args.threads} "
               f"thread{'s' if args.threads > 1 else ''}), {total:.0f} s in all, on a "
               "2-core machine shared with other jobs")
    lines = [
        "Line models: sparse evaluation and clone-and-fit",
        "=================================================",
        "",
        "Measured in one run of",
        "",
        ".. code-block:: bash",
        "",
        f"    python benchmarks/line_model_speed.py --threads {args.threads} --clone-steps "
        f"{args.clone_steps} --fit-steps {args.fit_steps} --write {args.write}",
        "",
        f"Machine: {machine}. The other jobs took most of the two cores during this run, "
        "so wall-clock times are inflated several-fold; the CPU time of the benchmark's one "
        "thread (``time.process_time``, best of repeated runs for single steps) is the "
        "estimate of the uncontended time, and ratios are measured in the same run.",
        "",
        "**One training step over the full HPF band.** The blasé PHOENIX table (T4700, "
        f"log g 4.5: {len(table):,} lines, pseudo-Voigt, product of line factors) on the "
        "default native "
        f"grid ({model.grid.shape[-1]:,} pixels uniform in ln wavelength, R = 650,000), with "
        f"windows sized per line from its widths and area (absorption above 1e-4, grown "
        f"by 1.25 for the changes a fit makes): {plan.n_window_pixels:,} (line, pixel) "
        f"elements ({plan.n_elements:,} with bucket padding). One forward + backward + Adam "
        f"step takes **{full_step[1] * 1e3:.0f} ms** of CPU time ({full_step[0] * 1e3:.0f} ms "
        f"wall on the shared machine; goal: at most 100 ms; blasé's sparse "
        "emulator takes 2.9 s per step on this kind of machine with a fixed 1,000-pixel cut "
        "and 9 million elements).",
        "",
        ".. list-table:: Sparse versus dense (every line on every pixel, the lines x pixels "
        "matrix of a plain torch implementation), one forward + backward + Adam step, "
        "CPU time",
        "   :header-rows: 1",
        "",
        "   * - Sub-band (Angstrom)",
        "     - Lines",
        "     - Pixels",
        "     - Dense elements",
        "     - Sparse elements",
        "     - Sparse (ms)",
        "     - Dense (ms)",
        "     - Dense / sparse",
    ]
    for band, n_lines, n_pix, dense, sparse, t_s, t_d in rows:
        lines += [f"   * - {band}", f"     - {n_lines}", f"     - {n_pix:,}",
                  f"     - {dense:,}", f"     - {sparse:,}", f"     - {t_s * 1e3:.1f}",
                  f"     - {t_d * 1e3:.0f}", f"     - {t_d / t_s:.0f}"]
    lines += [
        "",
        f"**Clone and fit.** The template is the table's spectrum on the native grid (a "
        f"stand-in for the PHOENIX spectrum it was cloned from); cloning it "
        f"(prominence 0.005, {args.clone_steps} Adam steps) found {report.n_lines:,} lines "
        f"and reproduces it to {100 * report.residual_rms:.2f}% RMS in **{t_clone[1]:.1f} s** "
        f"of CPU time ({t_clone[0]:.1f} s wall). "
        f"The observation: all 28 HPF orders (HPF's pixel wavelengths, 57,344 pixels) of the "
        f"same star with the areas of 10% of its lines changed by factors in [0.7, 1.3], "
        f"RV {rv} km/s, vsini {vsini} km/s, R = 55,000, S/N {args.snr:.0f}. The fit "
        f"(all orders jointly; RV, vsini, a linear continuum per order, then all "
        f"{report.n_lines:,} lines' four parameters, {args.fit_steps} L-BFGS iterations, "
        f"regularization 1) takes **{t_fit[1]:.1f} s** of CPU time ({t_fit[0]:.1f} s wall) "
        f"and finds RV {fit.rv.value:.3f} km/s, "
        f"vsini {fit.vsini.value:.3f} km/s, residuals {fit.residual_rms():.3f} times the "
        f"noise. Clone and fit together: **{t_clone[1] + t_fit[1]:.1f} s** of CPU time "
        f"({t_clone[0] + t_fit[0]:.1f} s wall; goal: under 60 s; "
        "blasé reports 56 s on an RTX 2070 GPU and 75 minutes on an M1 CPU for its "
        "end-to-end HPF fit).",
        "",
    ]
    args.write.write_text("\n".join(lines))
    print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
