r"""Principal-component compression of spectra, in torch.

A :class:`PCABasis` holds the mean spectrum and the leading right-singular vectors of the
centred training flux. Spectra are projected onto it by (masked) least squares, so
pixels that must be ignored take no part in the coefficients.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..errors import SpectrumInputError

__all__ = ["PCABasis", "Projection", "fit_pca"]


class Projection(NamedTuple):
    """Result of :meth:`PCABasis.project`.

    Attributes
    ----------
    coefficients : torch.Tensor
        ``(n, n_components)`` PCA coefficients.
    rms : torch.Tensor
        ``(n,)`` root-mean-square residual of the reconstruction over the used pixels.
    n_used : torch.Tensor
        ``(n,)`` number of pixels used (unmasked).
    """

    coefficients: Tensor
    rms: Tensor
    n_used: Tensor


class PCABasis(nn.Module):
    r"""A PCA basis: mean spectrum, orthonormal components and their variances.

    Parameters
    ----------
    mean : torch.Tensor
        ``(n_pix,)`` mean training spectrum.
    components : torch.Tensor
        ``(n_components, n_pix)`` orthonormal rows (principal directions).
    variance : torch.Tensor
        ``(n_components,)`` variance of the training spectra along each component.
    explained_variance_ratio : torch.Tensor
        ``(n_components,)`` share of the total variance along each component.
    residual_variance : torch.Tensor
        ``(n_pix,)`` per-pixel variance of the training residuals (what the basis leaves
        out; mostly noise).

    Notes
    -----
    A spectrum :math:`f` with mask weights :math:`w_j \in \{0, 1\}` (0 at masked pixels)
    has coefficients :math:`c = (B W B^\top)^{-1} B W (f - \mu)`, the weighted least
    squares solution; without masked pixels this is :math:`B (f - \mu)`.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> flux = 1 + torch.randn(50, 3, dtype=torch.float64) @ torch.randn(3, 20,
    ...                                                                   dtype=torch.float64)
    >>> basis = fit_pca(flux, n_components=3)
    >>> proj = basis.project(flux)
    >>> bool(proj.rms.max() < 1e-10), basis.n_components
    (True, 3)
    """

    def __init__(self, mean: Tensor, components: Tensor, variance: Tensor,
                 explained_variance_ratio: Tensor, residual_variance: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("components", components)
        self.register_buffer("variance", variance)
        self.register_buffer("explained_variance_ratio", explained_variance_ratio)
        self.register_buffer("residual_variance", residual_variance)

    @property
    def n_components(self) -> int:
        """Number of components."""
        return int(self.components.shape[0])

    @property
    def n_pix(self) -> int:
        """Number of pixels."""
        return int(self.components.shape[1])

    def project(self, flux: Tensor, mask: Tensor | None = None) -> Projection:
        """Coefficients of ``flux`` ``(n, n_pix)``, ignoring pixels where ``mask`` is True.

        Raises
        ------
        SpectrumInputError
            If a spectrum has fewer unmasked pixels than components.
        """
        flux = flux.to(self.mean.dtype)
        centred = flux - self.mean
        basis = self.components
        if mask is None or not bool(mask.any()):
            coefficients = centred @ basis.T
            used = torch.full((len(flux),), self.n_pix, dtype=torch.int64)
            weight = torch.ones_like(centred)
        else:
            weight = (~mask).to(flux.dtype)
            used = (~mask).sum(-1)
            few = torch.nonzero(used < self.n_components).flatten()
            if len(few):
                i = int(few[0])
                raise SpectrumInputError(
                    f"spectrum {i} has {int(used[i])} unmasked pixels on the flow's grid; at "
                    f"least {self.n_components} (the number of PCA components) are needed")
            centred = torch.where(mask, 0.0, centred)
            normal = torch.einsum("kp,np,lp->nkl", basis, weight, basis)
            rhs = (centred * weight) @ basis.T
            coefficients = torch.linalg.solve(normal, rhs.unsqueeze(-1)).squeeze(-1)
        residual = (centred - coefficients @ basis) * weight
        rms = torch.sqrt((residual**2).sum(-1) / used.to(flux.dtype))
        return Projection(coefficients, rms, used)

    def reconstruct(self, coefficients: Tensor) -> Tensor:
        """Spectra ``(n, n_pix)`` from coefficients ``(n, n_components)``."""
        return self.mean + coefficients.to(self.mean.dtype) @ self.components


def _check_components(n_components: int | None, explained_variance: float, limit: int) -> None:
    if n_components is not None and (isinstance(n_components, bool)
                                     or not isinstance(n_components, int)
                                     or not 1 <= n_components <= limit):
        raise ValueError(f"n_components must be an integer in [1, {limit}] (the number of "
                         f"training spectra and pixels), got {n_components!r}")
    if not 0 < explained_variance <= 1:
        raise ValueError(f"explained_variance must be in (0, 1], got {explained_variance!r}")


def fit_pca(flux: Tensor, *, n_components: int | None = None,
            explained_variance: float = 0.999) -> PCABasis:
    """PCA of training spectra by singular value decomposition of the centred flux.

    Parameters
    ----------
    flux : torch.Tensor
        ``(n_spectra, n_pix)`` training flux (float64 recommended).
    n_components : int, optional
        Number of components; by default the fewest whose cumulative explained variance
        reaches ``explained_variance``.
    explained_variance : float
        Target share of the total variance, in (0, 1].

    Returns
    -------
    PCABasis

    Examples
    --------
    >>> import torch
    >>> flux = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]],
    ...                     dtype=torch.float64)
    >>> fit_pca(flux, explained_variance=0.4).n_components
    1
    """
    if flux.ndim != 2 or len(flux) < 2:
        raise ValueError(f"flux must have shape (n_spectra >= 2, n_pix), got {tuple(flux.shape)}")
    _check_components(n_components, explained_variance, min(flux.shape))
    mean = flux.mean(0)
    centred = flux - mean
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    variance = singular**2 / (len(flux) - 1)
    ratio = variance / variance.sum().clamp_min(torch.finfo(flux.dtype).tiny)
    if n_components is None:
        cumulative = torch.cumsum(ratio, 0)
        n_components = int(torch.searchsorted(cumulative, torch.tensor(
            explained_variance, dtype=cumulative.dtype) - 1e-12)) + 1
        n_components = min(n_components, len(ratio))
    components = vh[:n_components].contiguous()
    # fix the sign of each component (largest loading positive) for reproducible bases
    signs = torch.sign(components.gather(1, components.abs().argmax(1, keepdim=True)))
    components = components * signs
    residual = centred - (centred @ components.T) @ components
    return PCABasis(mean, components, variance[:n_components].clone(),
                    ratio[:n_components].clone(), residual.var(0))
