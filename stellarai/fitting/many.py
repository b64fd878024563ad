"""Fitting many spectra: vectorized chunks on one machine, or spread over a dask cluster.

:func:`fit_many` splits a list of observations into chunks and fits each chunk in one
vectorized pass (:meth:`SpectrumFitter.fit_batch <stellarai.fitting.SpectrumFitter.fit_batch>`).
Without a cluster the chunks run one after the other in this process; given a
`dask.distributed.Client` (or ``n_workers > 1``, which starts a ``LocalCluster`` of that
many single-threaded worker processes and closes it afterwards) they run on the workers.
Every spectrum gets the same seeded starts as a fit of it alone, and a vectorized pass
gives each spectrum the result of its own fit, so the results do not depend on the chunk
size, the number of workers or the order in which chunks finish: they equal the serial,
one-by-one results. :func:`results_table` summarizes the results, one
row per spectrum.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from astropy.table import QTable
from specutils import SpectrumList
from tqdm.auto import tqdm

from .errors import FitError

__all__ = ["DEFAULT_CHUNK_SIZE", "FitManyError", "fit_many", "local_client", "results_table"]

DEFAULT_CHUNK_SIZE = 8
"""Spectra per vectorized pass of :func:`fit_many` (and per dask task)."""


class FitManyError(FitError):
    """Bad arguments to :func:`fit_many` (workers, chunk size, client, empty input)."""


def _check_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise FitManyError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _fitter(model: Any, options: dict[str, Any]) -> Any:
    from .fitter import SpectrumFitter

    return SpectrumFitter(model, progress=False, **options)


def _fit_chunk_remote(model: Any, spectra: Sequence[Any], options: dict[str, Any]
                      ) -> list[dict[str, Any]]:
    """What a dask worker runs: one torch thread, results as plain dictionaries."""
    import torch

    torch.set_num_threads(1)
    return [result.to_dict() for result in _fitter(model, options).fit_batch(list(spectra))]


@contextmanager
def local_client(n_workers: int) -> Iterator[Any]:
    """A client of a new ``distributed.LocalCluster`` for torch fits, closed on exit.

    The cluster has ``n_workers`` single-threaded worker processes, no dashboard, and no
    spilling of task data to disk (``memory_limit=0``). Its workers start without the
    ``MALLOC_TRIM_THRESHOLD_=65536`` that dask's nannies set by default
    (``distributed.nanny.pre-spawn-environ``): with it, glibc returns freed memory to the
    system so eagerly that the large temporary tensors of a fit are mapped afresh at every
    step, which doubled the CPU time of a fit on this package's benchmark machine (7.6 s
    against 3.9 s for four one-order HPF fits). On clusters you start yourself, unset it
    the same way: set the dask configuration key
    ``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_`` to None
    (``dask.config.set``) around the cluster's creation.

    Parameters
    ----------
    n_workers : int
        Number of worker processes.
    """
    import dask
    from distributed import Client, LocalCluster

    unset_trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    with dask.config.set(unset_trim), \
            LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                         memory_limit=0, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


@contextmanager
def _client_for(client: Any, n_workers: int) -> Iterator[Any]:
    """``client`` itself, or a client of a new LocalCluster closed on exit."""
    if client is not None:
        yield client
        return
    with local_client(n_workers) as local:
        yield local


def fit_many(spectra: Sequence[Any], model: Any, *, client: Any = None, n_workers: int = 1,
             chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True,
             **fit_options: Any) -> list[Any]:
    """Fit many observations with one model, in vectorized chunks, optionally with dask.

    Parameters
    ----------
    spectra : sequence
        The observations: each a `~specutils.Spectrum`, `~specutils.SpectrumList` or muler
        ``EchelleSpectrumList``, as for :func:`~stellarai.fitting.fit`.
    model : SpectralEmulator or stellarai.ops.Operator
        The model (an emulator or a source chain), shared by every fit.
    client : dask.distributed.Client, optional
        Spread the chunks over this client's workers. The model is sent once to every
        worker; each task sends a chunk of spectra and returns its results as
        :meth:`FitResult.to_dict <stellarai.fitting.FitResult.to_dict>` dictionaries.
    n_workers : int
        Without ``client``: 1 (default) fits in this process; more starts a
        ``distributed.LocalCluster`` of that many single-threaded worker processes for
        this call and closes it afterwards.
    chunk_size : int
        Spectra per vectorized pass (and per dask task).
    progress : bool
        Show a tqdm bar of the spectra done.
    **fit_options
        Passed to :class:`~stellarai.fitting.SpectrumFitter` (``starts``, ``seed``,
        ``uncertainty``, ``continuum_degree``, ...).

    Returns
    -------
    list of FitResult
        In the order of ``spectra``; ``fit_many(spectra, model, **options)[i]`` equals
        ``fit(model, spectra[i], **options)`` (every spectrum gets the same seeded starts),
        whatever the chunking and the workers.

    Raises
    ------
    FitManyError
        For an empty ``spectra`` or a single SpectrumList (one observation: wrap it in a
        list), ``n_workers`` or ``chunk_size`` below 1, both
        ``client`` and ``n_workers > 1``, or a ``client`` that is not a
        ``dask.distributed.Client``.

    Examples
    --------
    See :doc:`/fitting_many` for a worked example. Bad arguments are refused before any
    work:

    >>> fit_many([], None)
    Traceback (most recent call last):
    ...
    stellarai.fitting.many.FitManyError: spectra is empty: give at least one observation
    """
    if isinstance(spectra, SpectrumList):
        raise FitManyError(
            "spectra is one SpectrumList, which fit_many would take for many one-order "
            "observations; pass a list of observations ([orders] for one), or list(spectra) "
            "if each order really is a separate observation")
    spectra = list(spectra)
    if not spectra:
        raise FitManyError("spectra is empty: give at least one observation")
    n_workers = _check_int(n_workers, "n_workers")
    chunk_size = _check_int(chunk_size, "chunk_size")
    if client is not None:
        from distributed import Client

        if not isinstance(client, Client):
            raise FitManyError(f"client must be a dask.distributed.Client, got "
                               f"{type(client).__name__}")
        if n_workers > 1:
            raise FitManyError("give either client or n_workers > 1, not both (the client's "
                               "cluster decides the number of workers)")
    starts = range(0, len(spectra), chunk_size)
    chunks = [(start, spectra[start:start + chunk_size]) for start in starts]
    bar = tqdm(total=len(spectra), desc="fit_many", unit="spectrum", disable=not progress)
    try:
        if client is None and n_workers == 1:
            fitter = _fitter(model, fit_options)
            results: list[Any] = []
            for _, chunk in chunks:
                results.extend(fitter.fit_batch(chunk))
                bar.update(len(chunk))
            return results
        return _fit_distributed(chunks, model, client, n_workers, fit_options, bar)
    finally:
        bar.close()


def _fit_distributed(chunks: list[tuple[int, list[Any]]], model: Any, client: Any,
                     n_workers: int, options: dict[str, Any], bar: Any) -> list[Any]:
    from distributed import as_completed

    from .result import FitResult

    done: dict[int, list[Any]] = {}
    with _client_for(client, n_workers) as active:
        shared = active.scatter(model, broadcast=True, hash=False)
        futures = {active.submit(_fit_chunk_remote, shared, chunk, options, pure=False): start
                   for start, chunk in chunks}
        for future in as_completed(futures):
            dictionaries = future.result()
            done[futures[future]] = [FitResult.from_dict(d) for d in dictionaries]
            bar.update(len(dictionaries))
    return [result for start in sorted(done) for result in done[start]]


def results_table(results: Sequence[Any], names: Sequence[str] | None = None) -> QTable:
    """A table of many fits: one row per spectrum.

    Parameters
    ----------
    results : sequence of FitResult
        E.g. from :func:`fit_many`.
    names : sequence of str, optional
        Parameters to include (default: every parameter of the first result's table).

    Returns
    -------
    QTable
        Columns ``index``, ``converged``, ``chi2``, then ``<name>`` (a Quantity column in
        the parameter's unit) and ``<name>_uncertainty`` for each parameter.

    Raises
    ------
    FitManyError
        If ``results`` is empty or a result lacks one of the parameters.
    """
    import astropy.units as u

    results = list(results)
    if not results:
        raise FitManyError("results is empty: give at least one FitResult")
    first = results[0].table
    names = [str(n) for n in first["name"]] if names is None else [str(n) for n in names]
    columns: dict[str, Any] = {
        "index": np.arange(len(results)),
        "converged": np.array([bool(r.converged) for r in results]),
        "chi2": np.array([float(r.chi2) for r in results]),
    }
    for name in names:
        values, sigmas, unit = [], [], None
        for i, result in enumerate(results):
            table = result.table
            where = [j for j, n in enumerate(table["name"]) if str(n) == name]
            if not where:
                raise FitManyError(f"result {i} has no parameter {name!r}; it has "
                                   f"{[str(n) for n in table['name']]}")
            row = table[where[0]]
            unit = u.Unit(str(row["unit"]) or "")
            values.append(_number(row["value"], unit))
            sigmas.append(_number(row["uncertainty"], unit))
        columns[name] = u.Quantity(values, unit)
        columns[f"{name}_uncertainty"] = u.Quantity(sigmas, unit)
    return QTable(columns)


def _number(value: Any, unit: Any) -> float:
    """A table cell as a float in ``unit`` (cells may be Quantities or plain numbers)."""
    if hasattr(value, "unit") and hasattr(value, "to_value"):
        return float(value.to_value(unit))
    number = float(value)
    return number if math.isfinite(number) else math.nan
