"""Readers and writers registered by stellarai.io, and read_spectrum_list."""

from __future__ import annotations

import importlib
import shutil
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.io import registry as io_registry
from astropy.nddata import (
    InverseVariance,
    StdDevUncertainty,
    UnknownUncertainty,
    VarianceUncertainty,
)
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from specutils import Spectrum, SpectrumList

import stellarai.io
from stellarai.errors import SpectrumInputError, SpectrumTypeError, UnreadableFileError
from stellarai.io import (
    STELLARAI_FORMATS,
    igrins_variance_path,
    read_igrins_plp,
    read_spectrum_list,
    strip_structural_keywords,
)

ROUND_TRIP_FORMATS = ("stellarai-fits", "stellarai-ecsv")


def _identified(path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # specutils' own identifiers may warn while sniffing
        return io_registry.identify_format("read", SpectrumList, str(path), None, [str(path)],
                                           {})


def _bits_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ----------------------------------------------------------------------------------------
# HPF Goldilocks
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def muler_hpf():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("muler.hpf")


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_hpf_equals_muler(hpf_files, muler_hpf):
    for path in hpf_files:
        ours = SpectrumList.read(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # muler: Spectrum1D deprecation, unclosed files
            theirs = muler_hpf.HPFSpectrumList.read(str(path))
        assert len(ours) == len(theirs) == 28
        for mine, ref in zip(ours, theirs, strict=True):
            assert type(mine) is Spectrum
            assert np.array_equal(mine.flux.value, ref.flux.value)
            assert mine.flux.unit == ref.flux.unit
            assert isinstance(mine.uncertainty, StdDevUncertainty)
            assert np.array_equal(mine.uncertainty.array, ref.uncertainty.array)
            assert np.array_equal(mine.spectral_axis.to_value(u.AA),
                                  ref.wavelength.to_value(u.AA))
            assert np.array_equal(mine.mask, ref.mask)
            assert mine.meta["m"] == ref.meta["m"]
            for arr in (mine.flux.value, mine.uncertainty.array, mine.spectral_axis.value):
                assert arr.dtype == np.float64 and arr.dtype.isnative


def test_hpf_meta_mask_and_content_identification(hpf_files, tmp_path):
    path = hpf_files[0]
    assert "stellarai-hpf-goldilocks" in _identified(path)
    orders = read_spectrum_list(path)
    first = orders[0]
    assert set(first.meta) >= {"m", "header", "instrumental_resolution", "instrument"}
    assert first.meta["instrumental_resolution"] == 55_000
    assert first.meta["instrument"] == "HPF"
    assert first.meta["header"]["INSTRUME"].strip() == "HPF"
    assert [o.meta["m"] for o in orders] == list(range(28))
    assert all(np.all(np.diff(o.spectral_axis.value) > 0) for o in orders)
    # the 4 no-data pixels at each end (flux 0, error 0) are masked, nothing else there
    for o in orders:
        assert o.mask[:4].all() and o.mask[-4:].all()
        assert np.all(o.uncertainty.array[~o.mask] > 0)
    # content, not name: a renamed copy reads identically
    copy = tmp_path / "renamed_spectrum.bin"
    shutil.copyfile(path, copy)
    assert "stellarai-hpf-goldilocks" in _identified(copy)
    again = SpectrumList.read(copy)
    assert np.array_equal(again[7].flux.value, orders[7].flux.value)
    assert len(read_spectrum_list(copy)) == 28


def test_hpf_sky_fiber(hpf_files):
    sky = SpectrumList.read(hpf_files[0], format="stellarai-hpf-goldilocks", fiber="Sky")
    with fits.open(hpf_files[0]) as hdul:
        assert np.array_equal(sky[5].flux.value, hdul["Sky Flux"].data[5].astype(float))
    assert sky[5].meta["fiber"] == "Sky"
    with pytest.raises(SpectrumInputError, match="fiber"):
        SpectrumList.read(hpf_files[0], format="stellarai-hpf-goldilocks", fiber="LFC")


# ----------------------------------------------------------------------------------------
# IGRINS PLP
# ----------------------------------------------------------------------------------------
def test_igrins_plp(igrins_file):
    assert "stellarai-igrins-plp" in _identified(igrins_file)
    orders = SpectrumList.read(igrins_file)
    assert len(orders) == 28
    starts = [o.spectral_axis[0].to_value(u.AA) for o in orders]
    assert np.all(np.diff(starts) > 0)
    assert all(np.all(np.diff(o.spectral_axis.value) > 0) for o in orders)
    assert [o.meta["m"] for o in orders] == list(range(125, 97, -1))
    with fits.open(igrins_file) as hdul:
        flux = hdul[0].data
        wave = hdul["WAVELENGTH"].data
        a0v = hdul["A0V_SPEC"].data
        vega = hdul["VEGA_SPEC"].data
    variance = fits.getdata(igrins_variance_path(igrins_file))
    for o in orders:
        row = o.meta["m"] - 98
        assert o.meta["instrument"] == "IGRINS"
        assert o.meta["instrumental_resolution"] == 45_000
        assert o.meta["header"]["INSTRUME"].strip() == "IGRINS"
        assert o.spectral_axis.unit == u.AA and o.flux.unit == u.dimensionless_unscaled
        np.testing.assert_allclose(o.spectral_axis.to_value(u.micron), wave[row], rtol=1e-15)
        assert np.array_equal(o.flux.value, flux[row], equal_nan=True)
        nan = np.isnan(o.flux.value)
        assert np.all(o.mask[nan])  # NaN flux stays NaN, and is masked
        assert np.all(o.mask[a0v[row] <= 0])
        assert isinstance(o.uncertainty, StdDevUncertainty)
        expected = np.sqrt(variance[row].astype(float)) * np.abs(vega[row] / a0v[row])
        good = ~o.mask
        np.testing.assert_allclose(o.uncertainty.array[good], expected[good], rtol=1e-12)
        assert np.all(np.isfinite(o.uncertainty.array[good]))
        for arr in (o.flux.value, o.uncertainty.array, o.spectral_axis.value):
            assert arr.dtype.isnative
    # the middle of the band is well measured: typical S/N of tens to hundreds
    snr = np.nanmedian(orders[14].flux.value / orders[14].uncertainty.array)
    assert 20 < snr < 1000


def test_igrins_without_variance_file(igrins_file, tmp_path):
    copy = tmp_path / "some_igrins_spectrum.fits"
    shutil.copyfile(igrins_file, copy)
    with pytest.warns(AstropyUserWarning, match="no variance file"):
        orders = SpectrumList.read(copy)
    assert len(orders) == 28 and all(o.uncertainty is None for o in orders)
    assert all(np.all(o.mask[np.isnan(o.flux.value)]) for o in orders)
    # an explicit variance file restores the uncertainty
    with_var = read_igrins_plp(copy, variance_file=igrins_variance_path(igrins_file))
    assert isinstance(with_var[3].uncertainty, StdDevUncertainty)
    with pytest.raises(FileNotFoundError, match="variance_file"):
        read_igrins_plp(copy, variance_file=tmp_path / "nope.variance.fits")


# ----------------------------------------------------------------------------------------
# stellarai-fits / stellarai-ecsv round trips
# ----------------------------------------------------------------------------------------
def _header() -> fits.Header:
    h = fits.PrimaryHDU(np.zeros((2, 3))).header
    h["OBJECT"] = ("HD 1234", "target")
    h["DATE-OBS"] = "2021-02-12T07:29:05.148777"
    h["EXPTIME"] = 330.15
    h["HISTORY"] = "normalized by stellarai"
    h["LONGSTR"] = "x" * 150  # CONTINUE cards
    h["UNDEF"] = None
    return h


def _normalized_spectrum(uncertainty_cls=InverseVariance, dtype=np.float64) -> Spectrum:
    rng = np.random.default_rng(1)
    n = 64
    flux = (1 + 0.01 * rng.standard_normal(n)).astype(dtype)
    flux[5] = np.nan
    sigma = np.full(n, 0.01, dtype=dtype)
    values = {StdDevUncertainty: sigma, VarianceUncertainty: sigma**2,
              InverseVariance: sigma**-2, UnknownUncertainty: sigma}[uncertainty_cls]
    mask = np.zeros(n, bool)
    mask[[0, 5, 63]] = True
    return Spectrum(
        flux=flux * u.dimensionless_unscaled,
        spectral_axis=np.linspace(15000.0, 15063.0, n) * rng.uniform(1, 1.0001) * u.AA,
        uncertainty=uncertainty_cls(values),
        mask=mask,
        meta={"header": _header(), "m": 19, "normalized": True, "note": "it's \"quoted\"",
              "labels": {"teff": 4700.0, "logg": 4.5}, "list": [1, 2.5, None],
              "rv": 3.5 * u.km / u.s, "grid": np.arange(3.0), "int64": np.int64(7),
              "logg": 4.5 * u.dex(u.cm / u.s**2)},
    )


def _assert_same_spectrum(a: Spectrum, b: Spectrum, header_exact: bool) -> None:
    assert _bits_equal(a.spectral_axis.value, b.spectral_axis.value)
    assert a.spectral_axis.unit == b.spectral_axis.unit
    assert _bits_equal(a.flux.value, b.flux.value)
    assert a.flux.unit == b.flux.unit
    if a.uncertainty is None:
        assert b.uncertainty is None
    else:
        assert type(a.uncertainty) is type(b.uncertainty)
        assert _bits_equal(a.uncertainty.array, b.uncertainty.array)
    if a.mask is None:
        assert b.mask is None
    else:
        assert _bits_equal(a.mask, b.mask)
    for arr in (b.flux.value, b.spectral_axis.value):
        assert arr.dtype.isnative
    meta_a = {k: v for k, v in a.meta.items() if k != "header"}
    meta_b = {k: v for k, v in b.meta.items() if k != "header"}
    assert meta_a.keys() == meta_b.keys()
    for key, value in meta_a.items():
        if isinstance(value, (np.ndarray, u.Quantity)):
            assert type(meta_b[key]) is type(value) and np.all(meta_b[key] == value)
        else:
            assert meta_b[key] == value
    if "header" in a.meta:
        expected = a.meta["header"] if header_exact else strip_structural_keywords(
            a.meta["header"])
        got = b.meta["header"]
        assert isinstance(got, fits.Header)
        assert [(c.keyword, c.value, c.comment) for c in got.cards] == [
            (c.keyword, c.value, c.comment) for c in expected.cards]


@pytest.mark.parametrize("fmt", ROUND_TRIP_FORMATS)
@pytest.mark.parametrize("unc", [StdDevUncertainty, VarianceUncertainty, InverseVariance,
                                 UnknownUncertainty])
def test_round_trip_normalized_spectrum(tmp_path, fmt, unc):
    spectrum = _normalized_spectrum(unc)
    path = tmp_path / ("out." + ("fits" if fmt == "stellarai-fits" else "ecsv"))
    spectrum.write(path, format=fmt)
    assert fmt in _identified(path)
    back = Spectrum.read(path)  # auto-identified by content
    assert type(back) is Spectrum
    _assert_same_spectrum(spectrum, back, header_exact=(fmt == "stellarai-ecsv"))
    listed = read_spectrum_list(path)
    assert len(listed) == 1
    _assert_same_spectrum(spectrum, listed[0], header_exact=(fmt == "stellarai-ecsv"))
    with pytest.raises(OSError, match="exists"):
        spectrum.write(path, format=fmt)
    spectrum.write(path, format=fmt, overwrite=True)


@pytest.mark.parametrize("fmt", ROUND_TRIP_FORMATS)
def test_round_trip_spectrum_list_physical_units(tmp_path, fmt):
    shared = _header()
    other = fits.Header({"OBJECT": "sky", "EXPTIME": 10.0})
    a = Spectrum(flux=np.arange(1.0, 11.0, dtype=np.float32) * u.Unit("erg / (s cm2 AA)"),
                 spectral_axis=np.linspace(1.5, 1.6, 10) * u.micron,
                 uncertainty=VarianceUncertainty(np.full(10, 0.25, np.float32)),
                 meta={"header": shared, "m": 98})
    b = Spectrum(flux=np.linspace(100, 200, 7) * u.ct,
                 spectral_axis=np.linspace(8000, 8001, 7) * u.AA,
                 mask=np.array([1, 0, 0, 0, 0, 0, 1], dtype=np.int16),
                 meta={"header": shared, "m": 99})
    c = Spectrum(flux=np.ones(5) * u.one, spectral_axis=np.arange(5.0) * u.GHz,
                 uncertainty=StdDevUncertainty(np.full(5, 0.1)), mask=np.zeros(5, bool),
                 meta={"header": other})
    spectra = SpectrumList([a, b, c])
    path = tmp_path / ("list." + ("fits" if fmt == "stellarai-fits" else "ecsv"))
    spectra.write(path, format=fmt)
    back = SpectrumList.read(path)
    assert type(back) is SpectrumList and len(back) == 3
    for x, y in zip(spectra, back, strict=True):
        _assert_same_spectrum(x, y, header_exact=(fmt == "stellarai-ecsv"))
    assert back[0].flux.dtype == np.float32 and back[1].mask.dtype == np.int16
    assert back[0].meta["header"] is back[1].meta["header"]  # stored once, shared again
    with pytest.raises(SpectrumInputError, match="3 spectra"):
        Spectrum.read(path)
    assert len(read_spectrum_list(path)) == 3


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_round_trip_real_orders(hpf_files, tmp_path):
    orders = read_spectrum_list(hpf_files[0])
    normalized = SpectrumList(
        [o / np.nanmedian(o.flux) for o in orders[10:13]]
    )
    for o in normalized:
        assert o.flux.unit == u.dimensionless_unscaled
    for fmt, name in (("stellarai-fits", "n.fits"), ("stellarai-ecsv", "n.ecsv")):
        normalized.write(tmp_path / name, format=fmt)
        back = read_spectrum_list(tmp_path / name)
        for x, y in zip(normalized, back, strict=True):
            _assert_same_spectrum(x, y, header_exact=(fmt == "stellarai-ecsv"))
            assert y.meta["header"]["QRA"] == "07:52:37.00"


def test_writer_input_errors(tmp_path):
    with pytest.raises(SpectrumTypeError, match="Spectrum or SpectrumList"):
        stellarai.io.write_stellarai_fits(np.ones(3), tmp_path / "x.fits")
    flat = Spectrum(flux=np.ones((2, 4)) * u.one, spectral_axis=np.arange(4.0) * u.AA)
    with pytest.raises(SpectrumInputError, match="1-D"):
        flat.write(tmp_path / "x.fits", format="stellarai-fits")
    with pytest.raises(SpectrumInputError, match="empty"):
        SpectrumList([]).write(tmp_path / "x.ecsv", format="stellarai-ecsv")
    odd = Spectrum(flux=np.ones(4) * u.one, spectral_axis=np.arange(4.0) * u.AA,
                   meta={"ok": 1, "function": print})
    with pytest.warns(AstropyUserWarning, match="function"):
        odd.write(tmp_path / "odd.ecsv", format="stellarai-ecsv")
    assert Spectrum.read(tmp_path / "odd.ecsv").meta == {"ok": 1}


# ----------------------------------------------------------------------------------------
# identifiers must not claim foreign files
# ----------------------------------------------------------------------------------------
def test_identifiers_do_not_claim_foreign_files(tmp_path):
    plain = Spectrum(flux=np.arange(1.0, 6.0) * u.Jy, spectral_axis=np.arange(5.0) * u.AA,
                     uncertainty=StdDevUncertainty(np.full(5, 0.1)))
    tabular = tmp_path / "plain.fits"
    plain.write(tabular, format="tabular-fits")
    found = _identified(tabular)
    assert "tabular-fits" in found
    assert not set(found) & set(STELLARAI_FORMATS)
    back = read_spectrum_list(tabular)  # falls through to specutils
    assert np.array_equal(back[0].flux.value, plain.flux.value)

    table = Table({"wavelength": np.arange(3.0) * u.AA, "flux": np.ones(3) * u.Jy})
    table.meta["comment"] = "STLRAI is mentioned here but is not the marker key"
    ecsv = tmp_path / "random.ecsv"
    table.write(ecsv, format="ascii.ecsv")
    assert not set(_identified(ecsv)) & set(STELLARAI_FORMATS)

    image = tmp_path / "hpf_like_image.fits"
    hdu = fits.PrimaryHDU(np.zeros((4, 4), dtype=np.float32))
    hdu.header["INSTRUME"] = "HPF"
    hdu.writeto(image)
    assert not set(_identified(image)) & set(STELLARAI_FORMATS)


def test_registration_is_idempotent():
    stellarai.io.register_formats()
    stellarai.io.register_formats()
    importlib.reload(stellarai.io)
    for fmt in STELLARAI_FORMATS:
        assert io_registry.get_reader(fmt, SpectrumList) is not None
    for fmt in ROUND_TRIP_FORMATS:
        assert io_registry.get_writer(fmt, Spectrum) is not None
        assert io_registry.get_writer(fmt, SpectrumList) is not None


# ----------------------------------------------------------------------------------------
# read_spectrum_list failures
# ----------------------------------------------------------------------------------------
def test_read_spectrum_list_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.fits"):
        read_spectrum_list(tmp_path / "missing.fits")

    text = tmp_path / "notes.txt"
    text.write_text("this is not a spectrum\njust words\n")
    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    image = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((10, 10))).writeto(image)
    corrupt = tmp_path / "corrupt.fits"
    corrupt.write_bytes(b"SIMPLE  =                    T" + b"\x00" * 100)
    for bad in (text, empty, image, corrupt, tmp_path):
        with pytest.raises(UnreadableFileError) as info:
            read_spectrum_list(bad)
        message = str(info.value)
        assert str(bad) in message and "\n" not in message
    with pytest.raises(UnreadableFileError, match="tried"):
        read_spectrum_list(image)
    with pytest.raises(UnreadableFileError, match="stellarai-fits"):
        read_spectrum_list(image, format="stellarai-fits")


def test_hdulist_input(hpf_files):
    with fits.open(hpf_files[0]) as hdul:
        orders = SpectrumList.read(hdul)
        assert len(orders) == 28 and orders[0].meta["instrument"] == "HPF"
        assert np.array_equal(orders[2].flux.value, hdul["Sci Flux"].data[2].astype(float))
