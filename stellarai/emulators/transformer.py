r"""TransformerPayne: flux as a function of labels and wavelength.

Labels become tokens, one per label: :math:`t_i = e_i\,z_i + o_i`, a learned embedding
:math:`e_i` times the scaled label :math:`z_i` plus a learned label identity :math:`o_i`
(without it a label at the centre of its range, :math:`z_i = 0`, would give a zero
token). The wavelength becomes a multi-scale sinusoidal encoding of :math:`\ln\lambda`
(:class:`~stellarai.emulators.SinusoidalEncoding`), projected to the model width: the
query; optionally (``n_knots``) plus learned features linearly interpolated between
knots in :math:`\ln\lambda`, a per-wavelength memory (a departure from the paper). A
stack of blocks follows; in each, the query cross-attends to the label tokens
(pre-LayerNorm, multi-head) and passes through an MLP, both residual. A LayerNorm and a
linear head give the normalized flux (optionally, ``knot_head``, plus a per-wavelength
linear read-out on the knots); the head starts at zero weights and a bias of 1,
so an untrained network returns the continuum exactly (with the default random head
the network first spends many steps unlearning per-pixel noise of order 0.5).

The tokens do not depend on wavelength, so each block's keys and values are computed once
per spectrum (:meth:`TransformerPayneNet.context`) and reused for every pixel: the cost
of a spectrum is one small context plus a per-pixel MLP-sized computation.

References
----------
Różański, T., Ting, Y.-S., & Jabłońska, M. 2024, arXiv:2407.05751 (TransformerPayne).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import astropy.units as u
import torch
from torch import Tensor, nn

from ..labels import LabelSpace
from .base import DEFAULT_MAX_ELEMENTS, SpectralEmulator, _as_wavelength
from .encoding import SinusoidalEncoding
from .errors import EmulatorError
from .payne import seeded

__all__ = ["CrossAttentionBlock", "TransformerPayne", "TransformerPayneNet"]

Context = list[tuple[Tensor, Tensor]]
PixelFeatures = tuple[Tensor, Tensor | None, Tensor | None]


class CrossAttentionBlock(nn.Module):
    """Pre-norm block: query cross-attends to label tokens, then an MLP; both residual.

    Parameters
    ----------
    d_model, n_heads, mlp_hidden : int
        Width, attention heads (dividing ``d_model``) and MLP hidden width.
    """

    def __init__(self, d_model: int, n_heads: int, mlp_hidden: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise EmulatorError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.norm_query = nn.LayerNorm(d_model)
        self.norm_tokens = nn.LayerNorm(d_model)
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.norm_mlp = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_hidden), nn.GELU(),
                                 nn.Linear(mlp_hidden, d_model))

    def context(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values ``(b, heads, n_labels, d_head)`` of the label tokens."""
        b, n, d = tokens.shape
        kv = self.key_value(self.norm_tokens(tokens))
        kv = kv.view(b, n, 2, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        return kv[0], kv[1]

    def forward(self, x: Tensor, key: Tensor, value: Tensor) -> Tensor:
        """Update the queries ``x`` ``(b, p, d)`` given this block's keys and values."""
        b, p, d = x.shape
        q = self.query(self.norm_query(x)).view(b, p, self.n_heads, d // self.n_heads)
        # Scores laid out (b, heads, n_labels, p) and normalized over the labels (dim -2):
        # the softmax then runs along the long, contiguous pixel axis; over a last axis of
        # a dozen labels PyTorch's CPU softmax is several times slower. Same function.
        scores = key @ q.permute(0, 2, 3, 1) / math.sqrt(q.shape[-1])
        weights = torch.softmax(scores, dim=-2)
        attended = (value.transpose(-1, -2) @ weights).permute(0, 3, 1, 2).reshape(b, p, d)
        x = x + self.out(attended)
        return x + self.mlp(self.norm_mlp(x))


class TransformerPayneNet(nn.Module):
    r"""The TransformerPayne network: ``forward(z, wavelength)`` → flux.

    Parameters
    ----------
    n_labels : int
        Number of labels.
    encoding : SinusoidalEncoding
        The wavelength encoding.
    d_model, n_blocks, n_heads, mlp_hidden : int
        Width, depth, attention heads and MLP width.
    n_knots : int
        Learned query features on this many knots (0: none).
    n_label_blocks : int
        Pre-norm self-attention encoder blocks among the label tokens (0: none).
    knot_range : (float, float)
        :math:`\ln\lambda` (Angstrom) of the first and last knot.
    knot_head : bool
        Add a per-knot linear read-out (weights and bias on the same knots, interpolated)
        to the shared head; needs ``n_knots``.
    """

    def __init__(self, n_labels: int, encoding: SinusoidalEncoding, *, d_model: int = 128,
                 n_blocks: int = 4, n_heads: int = 4, mlp_hidden: int = 256,
                 n_knots: int = 0, knot_range: tuple[float, float] = (0.0, 1.0),
                 n_label_blocks: int = 0, knot_head: bool = False) -> None:
        super().__init__()
        if knot_head and n_knots < 2:
            raise EmulatorError("knot_head needs query knots (n_knots >= 2)")
        self.knot_range = (float(knot_range[0]), float(knot_range[1]))
        self.knots = nn.Parameter(torch.zeros(n_knots, d_model)) if n_knots > 1 else None
        # zero: the knot read-out starts silent, so the untrained network is still the continuum
        self.head_knots = nn.Parameter(torch.zeros(n_knots, d_model + 1)) if knot_head else None
        self.label_embedding = nn.Parameter(torch.randn(n_labels, d_model))
        self.label_identity = nn.Parameter(0.1 * torch.randn(n_labels, d_model))
        self.label_blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, mlp_hidden, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(n_label_blocks))
        self.encoding = encoding
        self.query_in = nn.Linear(encoding.n_features, d_model)
        self.blocks = nn.ModuleList(CrossAttentionBlock(d_model, n_heads, mlp_hidden)
                                    for _ in range(n_blocks))
        self.norm_out = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)
        with torch.no_grad():  # start at the continuum exactly: zero weights, bias 1
            self.head.weight.zero_()
            self.head.bias.fill_(1.0)

    def tokens(self, z: Tensor) -> Tensor:
        """Label tokens ``(b, n_labels, d)`` from scaled labels ``(b, n_labels)``.

        Each label's token is its embedding times its value plus its identity, then
        (``n_label_blocks``) updated by self-attention among the tokens, so that a token
        can carry the interactions of labels (an abundance's effect depends on Teff).
        """
        tokens = z[..., None] * self.label_embedding + self.label_identity
        for block in self.label_blocks:
            tokens = block(tokens)
        return tokens

    def knot_features(self, wavelength: Tensor) -> Tensor:
        """Learned query features at ``wavelength``, linear between knots uniform in ln λ."""
        return _between_knots(self.knots, *self._knot_position(wavelength))

    def _knot_position(self, wavelength: Tensor) -> tuple[Tensor, Tensor]:
        """Left knot index and fraction ``(..., 1)`` towards the next knot (ln λ, float64)."""
        low, high = self.knot_range
        n = self.knots.shape[0]
        pos = (torch.log(wavelength.to(torch.float64)) - low) / (high - low) * (n - 1)
        pos = pos.clamp(0, n - 1)
        left = pos.floor().long().clamp(max=n - 2)
        return left, (pos - left).to(self.knots.dtype)[..., None]

    def pixel_features(self, wavelength: Tensor) -> PixelFeatures:
        """The weight-free inputs of the query at ``wavelength`` (Angstrom, float64).

        Returns the wavelength encoding (cast to the weights' dtype) and, with knots, each
        wavelength's left knot and fraction towards the next (else None, None). They do not
        depend on the weights, so a fixed set of pixels can compute them once and index
        them (as training does); :meth:`query` turns them into the query.
        """
        encoded = self.encoding(wavelength).to(self.query_in.weight.dtype)
        if self.knots is None:
            return encoded, None, None
        return (encoded, *self._knot_position(wavelength))

    def query(self, features: PixelFeatures) -> Tensor:
        """The query ``(..., d)``: projected encoding plus interpolated knot features."""
        encoded, left, frac = features
        x = self.query_in(encoded)
        if left is not None:
            x = x + _between_knots(self.knots, left, frac).to(x.dtype)
        return x

    def context(self, z: Tensor) -> Context:
        """Every block's keys and values for scaled labels ``z`` (once per spectrum)."""
        tokens = self.tokens(z)
        return [block.context(tokens) for block in self.blocks]

    def forward(self, z: Tensor, wavelength: Tensor | None, context: Context | None = None, *,
                features: PixelFeatures | None = None) -> Tensor:
        """Flux ``(b, p)`` at ``wavelength`` (Angstrom, ``(p,)`` or ``(b, p)``, float64).

        ``features`` (from :meth:`pixel_features`, indexed as needed) replace
        ``wavelength``, which may then be None.
        """
        if context is None:
            context = self.context(z)
        if features is None:
            if wavelength is None:
                raise EmulatorError("forward needs a wavelength or its pixel features")
            features = self.pixel_features(wavelength)
        x = self.query(features)
        if x.ndim == 2:
            x = x.expand(z.shape[0], -1, -1)
        for block, (key, value) in zip(self.blocks, context, strict=True):
            x = block(x, key, value)
        x = self.norm_out(x)
        flux = self.head(x)[..., 0]
        if self.head_knots is not None:  # per-wavelength read-out, interpolated like the query's
            _, left, frac = features
            w = _between_knots(self.head_knots, left, frac).to(x.dtype)
            flux = flux + (x * w[..., :-1]).sum(-1) + w[..., -1]
        return flux


def _between_knots(table: Tensor, left: Tensor, frac: Tensor) -> Tensor:
    """Rows of ``table`` (one per knot) linearly interpolated at ``left + frac``."""
    return table[left] * (1 - frac) + table[left + 1] * frac


class TransformerPayne(SpectralEmulator):
    r"""TransformerPayne (Różański et al. 2024): flux at any wavelength from labels.

    Parameters
    ----------
    label_space : LabelSpace
        The labels.
    wavelength : Quantity or array
        Default evaluation grid, normally the training grid (vacuum; numbers are Angstrom).
        The emulator is evaluable at any wavelength within ``wavelength_range``.
    wavelength_range : (float, float), optional
        Range (Angstrom) over which the emulator may be evaluated (default: the span of
        ``wavelength``); wavelengths outside raise.
    d_model, n_blocks, n_heads, mlp_hidden : int
        Width, number of blocks, attention heads, MLP width.
    n_frequencies : int
        Periods in the sinusoidal wavelength encoding.
    n_knots : int
        Learned query features on this many knots uniform in :math:`\ln\lambda` over
        ``wavelength_range``, linearly interpolated and added to the projected encoding
        (0, the default: none, the paper's query). About one knot per training pixel
        gives the network a per-wavelength memory of where lines sit, which the
        sinusoidal encoding alone must otherwise build up through its blocks; the
        emulator stays evaluable at any wavelength, at the cost of ``n_knots * d_model``
        parameters. See the accuracy benchmark in the docs.
    knot_head : bool
        Also read the flux out per wavelength: weights and a bias on the same knots
        (linearly interpolated, ``n_knots * (d_model + 1)`` parameters, starting at zero)
        applied to the last features and added to the shared head, as The Payne's last
        layer is per pixel (a departure from the paper; default False). Needs ``n_knots``.
    n_label_blocks : int
        Self-attention blocks among the label tokens before the cross-attention (the
        paper's attention between label tokens; 0, the default: none). They run once per
        spectrum, so the cost per wavelength is unchanged.
    min_period, max_period : float, optional
        Shortest and longest encoding period in :math:`\ln\lambda`; defaults: four median
        pixel steps of ``wavelength`` (a period its samples resolve well; shorter ones
        alias between pixels) and
        twice the span of :math:`\ln\lambda`.
    train_pixels : int
        Random pixels per spectrum in each training batch.
    seed : int
        Seed of the weight initialization.
    flux_unit, provenance, max_elements
        See :class:`~stellarai.emulators.SpectralEmulator`.

    Notes
    -----
    Training (:class:`~stellarai.emulators.Trainer`) draws ``train_pixels`` random pixels
    of each spectrum per batch. Evaluation computes the keys and values of the label
    tokens once per spectrum and runs the pixels in chunks, so chunked and unchunked
    evaluations agree to round-off.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from stellarai.labels import LabelSpace
    >>> space = LabelSpace.default().subset(["teff", "logg"])
    >>> emu = TransformerPayne(space, np.linspace(5000, 5010, 50) * u.AA, d_model=16,
    ...                        n_blocks=1, n_heads=2, mlp_hidden=16, n_frequencies=8)
    >>> emu.spectrum(teff=5 * u.kK, logg=4.4, wavelength=[5000.5, 5001.5] * u.AA).flux.shape
    (2,)
    """

    backend = "transformer_payne"
    fixed_wavelength = False

    def __init__(self, label_space: LabelSpace, wavelength: Any, *,
                 wavelength_range: Sequence[float] | None = None, d_model: int = 128,
                 n_blocks: int = 4, n_heads: int = 4, mlp_hidden: int = 256,
                 n_frequencies: int = 32, min_period: float | None = None,
                 max_period: float | None = None, n_knots: int = 0, n_label_blocks: int = 0,
                 knot_head: bool = False, train_pixels: int = 256, seed: int = 0,
                 flux_unit: Any = u.dimensionless_unscaled,
                 provenance: Mapping[str, Any] | None = None,
                 max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
        grid = _as_wavelength(wavelength)
        if grid.numel() < 2:
            raise EmulatorError("TransformerPayne needs a wavelength grid of at least 2 pixels")
        low, high = (float(grid[0]), float(grid[-1])) if wavelength_range is None else (
            float(wavelength_range[0]), float(wavelength_range[1]))
        if not 0 < low < high:
            raise EmulatorError(f"wavelength_range must be (low, high) with 0 < low < high, got "
                                f"{wavelength_range!r}")
        if isinstance(n_knots, bool) or not isinstance(n_knots, int) or n_knots < 0 \
                or n_knots == 1:
            raise EmulatorError(f"n_knots must be 0 (no knots) or an integer >= 2, got "
                                f"{n_knots!r}")
        if isinstance(n_label_blocks, bool) or not isinstance(n_label_blocks, int) \
                or n_label_blocks < 0:
            raise EmulatorError(f"n_label_blocks must be a non-negative integer, got "
                                f"{n_label_blocks!r}")
        log_grid = torch.log(grid)
        if min_period is None:
            min_period = 4 * float(torch.median(torch.diff(log_grid)))
        if max_period is None:
            max_period = 2 * math.log(high / low)
        self._settings = {"d_model": int(d_model), "n_blocks": int(n_blocks),
                          "n_heads": int(n_heads), "mlp_hidden": int(mlp_hidden),
                          "n_frequencies": int(n_frequencies), "min_period": float(min_period),
                          "max_period": float(max_period), "n_knots": int(n_knots),
                          "n_label_blocks": int(n_label_blocks), "knot_head": bool(knot_head),
                          "reference": 0.5 * (math.log(low) + math.log(high)),
                          "wavelength_range": [low, high], "train_pixels": int(train_pixels),
                          "seed": int(seed)}
        if train_pixels < 1:
            raise EmulatorError(f"train_pixels must be a positive integer, got {train_pixels!r}")
        encoding = SinusoidalEncoding(int(n_frequencies), float(min_period), float(max_period),
                                      reference=self._settings["reference"])
        with seeded(int(seed)):
            module = TransformerPayneNet(len(label_space), encoding, d_model=int(d_model),
                                         n_blocks=int(n_blocks), n_heads=int(n_heads),
                                         mlp_hidden=int(mlp_hidden), n_knots=int(n_knots),
                                         knot_range=(math.log(low), math.log(high)),
                                         n_label_blocks=int(n_label_blocks),
                                         knot_head=bool(knot_head))
        super().__init__(label_space, module, wavelength=grid, flux_unit=flux_unit,
                         provenance=provenance, max_elements=max_elements)

    @property
    def wavelength_range(self) -> u.Quantity:
        """The range (vacuum Angstrom) within which the emulator may be evaluated."""
        return u.Quantity(self._settings["wavelength_range"], u.AA)

    @property
    def train_pixels(self) -> int:
        """Random pixels per spectrum in each training batch."""
        return self._settings["train_pixels"]

    @train_pixels.setter
    def train_pixels(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EmulatorError(f"train_pixels must be a positive integer, got {value!r}")
        self._settings["train_pixels"] = value

    def _evaluate(self, z: Tensor, wavelength: Tensor | None) -> Tensor:
        wl = self._wavelength if wavelength is None else wavelength
        low, high = self._settings["wavelength_range"]
        if float(wl.min()) < low or float(wl.max()) > high:
            raise EmulatorError(
                f"wavelength {float(wl.min()):.6g}-{float(wl.max()):.6g} Angstrom lies outside "
                f"the range this TransformerPayne was built for, {low:.6g}-{high:.6g} Angstrom"
            )
        width = max(self._settings["d_model"], self._settings["mlp_hidden"])
        n_pix = wl.numel()
        rows_step = max(1, self.max_elements // (n_pix * width))
        out = []
        for start in range(0, len(z), rows_step):
            rows = z[start:start + rows_step]
            context = self._module.context(rows)
            pix_step = max(1, self.max_elements // (len(rows) * width))
            out.append(torch.cat([self._module(rows, wl[a:a + pix_step], context)
                                  for a in range(0, n_pix, pix_step)], dim=-1))
        return torch.cat(out) if out else z.new_zeros((0, n_pix))

    def train_batch(self, z: Tensor, flux: Tensor, generator: torch.Generator | None = None
                    ) -> tuple[Tensor, Tensor]:
        """Prediction and target at :attr:`train_pixels` random pixels of each spectrum."""
        n_pix = flux.shape[-1]
        features = self._grid_features()
        if self.train_pixels >= n_pix:
            return self._module(z, None, features=features), flux
        index = torch.randint(0, n_pix, (len(z), self.train_pixels), generator=generator)
        picked = tuple(None if f is None else f[index] for f in features)
        return self._module(z, None, features=picked), flux.gather(1, index)

    def _grid_features(self) -> PixelFeatures:
        """:meth:`TransformerPayneNet.pixel_features` of the default grid, computed once.

        Recomputed when the grid, the weights' dtype or device, or the encoding changes;
        indexing them gives exactly what the wavelengths would (the encoding is per pixel).
        """
        net = self._module
        weight = net.query_in.weight
        key = (self._wavelength, weight.dtype, weight.device, net.encoding.reference,
               net.encoding.min_period, net.encoding.max_period)
        cached = getattr(self, "_grid_cache", None)
        if cached is None or cached[0][0] is not key[0] or cached[0][1:] != key[1:]:
            with torch.no_grad():
                features = net.pixel_features(self._wavelength.to(weight.device))
            self._grid_cache = (key, features)
        return self._grid_cache[1]

    def finetune_parameters(self, blocks: Iterable[int] | None = None, *, head: bool = True,
                            query: bool = False, labels: bool = False) -> list[nn.Parameter]:
        """The parameters to train when fine-tuning on a new grid.

        Parameters
        ----------
        blocks : iterable of int, optional
            Indices of the blocks to adapt (negative counts from the last); None: all.
        head : bool
            Include the output LayerNorm and head, and the knot read-out if any (default True).
        query : bool
            Include the wavelength projection ``query_in`` (and the query knots, if any).
        labels : bool
            Include the label embeddings and the label self-attention blocks.

        Returns
        -------
        list of torch.nn.Parameter
            Pass it as ``Trainer(emulator, parameters=..., lr=...)``; every other weight
            stays bit-identical.

        Examples
        --------
        >>> import numpy as np
        >>> from stellarai.labels import LabelSpace
        >>> emu = TransformerPayne(LabelSpace.default().subset(["teff"]),
        ...                        np.linspace(5000, 5010, 9), d_model=8, n_blocks=3,
        ...                        n_heads=2, mlp_hidden=8, n_frequencies=4)
        >>> len(emu.finetune_parameters(blocks=[-1], head=False))  # one block's 16 tensors
        16
        """
        net = self._module
        n = len(net.blocks)
        chosen = range(n) if blocks is None else sorted({self._block_index(b, n) for b in blocks})
        params: list[nn.Parameter] = []
        for i in chosen:
            params += list(net.blocks[i].parameters())
        if head:
            params += [*net.norm_out.parameters(), *net.head.parameters()]
            params += [] if net.head_knots is None else [net.head_knots]
        if query:
            params += list(net.query_in.parameters())
            params += [] if net.knots is None else [net.knots]
        if labels:
            params += [net.label_embedding, net.label_identity,
                       *net.label_blocks.parameters()]
        if not params:
            raise EmulatorError("finetune_parameters selected nothing to train")
        return params

    @staticmethod
    def _block_index(index: int, n: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int) or not -n <= index < n:
            raise EmulatorError(f"block index must be an integer in [{-n}, {n - 1}], got "
                                f"{index!r}")
        return index % n

    def architecture(self) -> dict[str, Any]:
        """Hyper-parameters that rebuild the network (widths, depth, encoding, range)."""
        return dict(self._settings)

    @classmethod
    def _from_architecture(cls, label_space: LabelSpace, wavelength: Any,
                           architecture: Mapping[str, Any], **kwargs: Any) -> TransformerPayne:
        keys = ("d_model", "n_blocks", "n_heads", "mlp_hidden", "n_frequencies", "min_period",
                "max_period", "wavelength_range", "train_pixels", "seed")
        settings = {k: architecture[k] for k in keys}
        settings["n_knots"] = int(architecture.get("n_knots", 0))  # files from before knots
        settings["n_label_blocks"] = int(architecture.get("n_label_blocks", 0))  # and before
        settings["knot_head"] = bool(architecture.get("knot_head", False))  # and before
        emulator = cls(label_space, wavelength, **settings, **kwargs)
        emulator._settings["reference"] = float(architecture["reference"])
        emulator._module.encoding.reference = float(architecture["reference"])
        return emulator
