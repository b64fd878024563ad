"""``stellarai synth``: one spectrum to FITS or ECSV (parser built here, as cli.py will)."""

import argparse

import astropy.units as u
import numpy as np
import pytest
from specutils import Spectrum

from stellarai.errors import LabelError, StellarAIError
from stellarai.synth import LineList
from stellarai.synth.cli import add_synth_parser, synth_command


def _parse(*argv):
    parser = argparse.ArgumentParser(prog="stellarai")
    add_synth_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["synth", *argv])


@pytest.mark.parametrize("suffix", [".fits", ".ecsv"])
def test_writes_a_spectrum_that_reads_back(tmp_path, capsys, suffix):
    out = tmp_path / f"star{suffix}"
    args = _parse("--teff", "4800", "--logg", "4.6", "--feh", "-0.2", "--range", "10800",
                  "10830", "--resolving-power", "50000", "--abundance", "mg_fe=0.2",
                  "--he-h", "0.1", "-o", str(out))
    assert args.run is synth_command
    assert args.run(args) == 0
    assert "wrote" in capsys.readouterr().out
    star = Spectrum.read(out)
    assert star.flux.size == 139 and star.meta["normalized"] is True
    assert star.meta["labels"] == {"teff": 4800.0, "logg": 4.6, "feh": -0.2, "vmic": 1.0,
                                   "alpha_fe": 0.0, "mg_fe": 0.2, "he_h": 0.1}
    assert 0.3 < float(np.min(star.flux.value)) < 1.0
    with pytest.raises(OSError):  # no --overwrite
        args.run(args)


def test_reads_a_line_list_file(tmp_path):
    path = tmp_path / "lines.ecsv"
    LineList.default([10790, 10840] * u.AA).select(species="Fe").write_ecsv(path)
    out = tmp_path / "iron.fits"
    args = _parse("--teff", "5000", "--logg", "4.5", "--range", "10800", "10830",
                  "--linelist", str(path), "-o", str(out))
    assert synth_command(args) == 0
    assert Spectrum.read(out).flux.size > 100


def test_bad_arguments_raise_stellarai_errors(tmp_path):
    with pytest.raises(StellarAIError, match="must end in .fits or .ecsv"):
        synth_command(_parse("--teff", "5000", "--logg", "4.5", "--range", "10800", "10830",
                             "-o", str(tmp_path / "x.txt")))
    with pytest.raises(StellarAIError, match="NAME=VALUE"):
        synth_command(_parse("--teff", "5000", "--logg", "4.5", "--range", "10800", "10830",
                             "--abundance", "mg_fe", "-o", str(tmp_path / "x.fits")))
    with pytest.raises(LabelError, match="'teff' = 20000 K"):
        synth_command(_parse("--teff", "20000", "--logg", "4.5", "--range", "10800", "10830",
                             "-o", str(tmp_path / "x.fits")))
