"""The boundary layer: spectra in and out.

Converts specutils `~specutils.Spectrum` / `~specutils.SpectrumList` / muler
``EchelleSpectrumList`` / Quantity arrays to one batched container of échelle orders
(:class:`OrderBatch`) and back, with canonical units inside (vacuum Angstrom), explicit
air/vacuum conversion, barycentric corrections computed offline, and differentiable
resampling in torch.
"""

from .airvac import air_to_vacuum, vacuum_to_air
from .barycentric import apply_barycentric_correction, barycentric_correction
from .orders import OrderBatch, OrderRecord, as_order_batch
from .resample import Rebinned, bin_edges, interpolate_linear, rebin_flux_conserving
from .spectral_axis import CANONICAL_WAVELENGTH_UNIT, from_vacuum_angstrom, to_vacuum_angstrom

__all__ = [
    "CANONICAL_WAVELENGTH_UNIT",
    "OrderBatch",
    "OrderRecord",
    "Rebinned",
    "air_to_vacuum",
    "apply_barycentric_correction",
    "as_order_batch",
    "barycentric_correction",
    "bin_edges",
    "from_vacuum_angstrom",
    "interpolate_linear",
    "rebin_flux_conserving",
    "to_vacuum_angstrom",
    "vacuum_to_air",
]
