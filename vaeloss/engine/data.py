"""Data sets for audits: built-in digits, MNIST-style from a directory, arrays, and a
linear-Gaussian ground truth. All values are float32 tensors of shape [N, D] (flattened),
with the image shape kept alongside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from vaeloss.errors import DataError
from vaeloss.objective.likelihoods import Likelihood
from vaeloss.validation import check_choice

__all__ = ["Dataset", "binarize", "linear_gaussian", "load_dataset", "prepare_for_likelihood"]

Binarization = Literal["none", "static", "dynamic"]
_TORCHVISION = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass
class Dataset:
    """A train/validation split of flattened data.

    Attributes:
        name: the data spec it came from.
        x_train, x_val: data, shapes [N_train, D] and [N_val, D], float32.
        y_train, y_val: integer labels [N] or None.
        shape: the shape of one sample (e.g. (1, 8, 8)); D = prod(shape).
        binarization: "none" | "static" | "dynamic" (dynamic is applied per step by the trainer).
        truth: ground-truth facts for synthetic data (eigenvalues, noise variance...).
    """

    name: str
    x_train: Tensor
    x_val: Tensor
    y_train: Tensor | None
    y_val: Tensor | None
    shape: tuple[int, ...]
    binarization: Binarization = "none"
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(math.prod(self.shape))


def binarize(x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Sample binary data with P(1) = x (dynamic/static binarisation).

    >>> binarize(torch.tensor([[0.0, 1.0]]))
    tensor([[0., 1.]])
    """
    return torch.bernoulli(x, generator=generator)


def _split(
    x: np.ndarray, y: np.ndarray | None, *, seed: int, val_fraction: float
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    n = x.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction))) if n > 1 else 0
    val, train = perm[:n_val], perm[n_val:]
    xt = torch.as_tensor(x.reshape(n, -1), dtype=torch.float32)
    yt = None if y is None else torch.as_tensor(y).long()
    return (xt[train], xt[val], None if yt is None else yt[train], None if yt is None else yt[val])


def _digits(side: int = 8) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """scikit-learn's 8x8 digits in [0, 1], resized to ``side`` x ``side`` (bilinear, as
    torchvision's ``Resize`` does) when a loss runs only at that size."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.data.astype(np.float32) / 16.0
    if side != 8:
        images = torch.from_numpy(x).reshape(-1, 1, 8, 8)
        resized = torch.nn.functional.interpolate(
            images, size=(side, side), mode="bilinear", align_corners=False
        )
        x = resized.clamp(0.0, 1.0).reshape(len(x), -1).numpy()
    return x, d.target, (1, side, side)


def _torchvision(
    name: str, data_dir: str | None, download: bool
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    import torchvision.datasets as tvd

    cls = getattr(tvd, _TORCHVISION[name])
    root = Path(data_dir or "data").expanduser()
    raw = root / cls.__name__ / "raw"
    try:
        train = cls(str(root), train=True, download=download)
    except RuntimeError as exc:
        if download:
            raise DataError(
                f"Expected to download {name} into {raw} but it failed ({exc}). Try downloading "
                f"the four IDX files by hand into {raw}."
            ) from None
        raise DataError(
            f"Expected the four {name} IDX files ({', '.join(IDX_FILES)}; uncompressed: gunzip "
            f"the .gz downloads) in {raw} but they are not all there (data_dir={str(root)!r}). Try "
            f"putting them there, passing --data-dir DIR, or --download where internet is available."
        ) from None
    x = train.data.numpy().astype(np.float32) / 255.0
    y = train.targets.numpy()
    return x, y, (1, *x.shape[1:])


def _array_file(kind: str, path_text: str) -> tuple[np.ndarray, np.ndarray | None, tuple[int, ...]]:
    path = Path(path_text).expanduser()
    if not path.exists():
        raise DataError(
            f"Expected an existing .{kind} file but got data='{kind}:{path_text}'. "
            f"Try a path to a file with an array x of shape [N, ...]."
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises many kinds
        raise DataError(f"Expected a NumPy .{kind} file but could not read {path}: {exc}.") from None
    if kind == "npz":
        if "x" not in loaded:
            raise DataError(
                f"Expected an array named 'x' in {path} but found {sorted(loaded)}. "
                f"Try np.savez(path, x=data, y=labels)."
            )
        x, y = loaded["x"], loaded["y"] if "y" in loaded else None
    else:
        x, y = loaded, None
    if x.ndim < 2:
        raise DataError(
            f"Expected x of shape [N, D] or [N, C, H, W] (samples first, then features) but got "
            f"shape {x.shape} in {path}. Try x.reshape(-1, 1) for one feature per sample, or "
            f"x.reshape(1, -1) if it is one sample."
        )
    if x.shape[0] == 0:
        raise DataError(
            f"Expected data rows but got x of shape {x.shape} in {path}: it holds no samples. "
            f"Try the file your data was saved to, e.g. np.savez(path, x=data) with data of shape [N, ...]."
        )
    if np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(
            f"Expected real-valued data but got dtype {x.dtype} in {path}. Try np.abs(x) or "
            f"np.stack([x.real, x.imag], axis=1) to keep both parts."
        )
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"Expected numeric data but got dtype {x.dtype} in {path}. Try x.astype(np.float32).")
    shape = tuple(x.shape[1:]) if x.ndim > 2 else (x.shape[1],)
    return x.astype(np.float32), y, shape


def linear_gaussian(
    n: int = 2000,
    *,
    eigenvalues: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5),
    noise_var: float = 0.05,
    dim: int = 8,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Samples of a linear-Gaussian model ``x = U diag(sqrt(s)) z + noise``.

    The covariance is ``U diag(s_1 + noise, ..., s_r + noise, noise, ...) U^T``: the signal
    eigenvalues plus an isotropic noise floor.

    Returns:
        (x [n, dim] float32, truth dict with "eigenvalues" (length dim), "noise_var", "basis").
    """
    if len(eigenvalues) > dim:
        raise DataError(f"Expected at most dim={dim} eigenvalues but got {len(eigenvalues)}.")
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    spec = np.full(dim, noise_var)
    spec[: len(eigenvalues)] += np.asarray(eigenvalues)
    z = rng.standard_normal((n, dim))
    x = (z * np.sqrt(spec)) @ basis.T
    return x.astype(np.float32), {
        "eigenvalues": spec.tolist(),
        "noise_var": noise_var,
        "signal": list(eigenvalues),
        "basis": basis.tolist(),
    }


def load_dataset(
    spec: str = "digits",
    *,
    data_dir: str | None = None,
    download: bool = False,
    likelihood: Likelihood | None = "bernoulli",
    binarization: Binarization = "none",
    rescale: bool = False,
    seed: int = 0,
    val_fraction: float = 0.2,
    limit: int | None = None,
    data_dim: int | None = None,
) -> Dataset:
    """Load a data set by spec: ``digits`` | ``mnist`` | ``fashion-mnist`` | ``npz:PATH`` |
    ``npy:PATH`` | ``linear-gaussian``.

    Values are checked: finite; in [0, 1] for Bernoulli likelihoods (``rescale=True`` maps
    min..max to [0, 1] instead of failing); ``likelihood=None`` skips the likelihood checks.
    ``data_dim``: the dimension a loss runs only at; the digits come to it when it is a square
    (784: 28x28), other data is as it is.

    >>> ds = load_dataset("digits")
    >>> ds.x_train.shape[1], ds.shape, float(ds.x_train.max())
    (64, (1, 8, 8), 1.0)
    >>> load_dataset("digits", data_dim=784).shape
    (1, 28, 28)
    """
    check_choice("binarization", binarization, ("none", "static", "dynamic"))
    if not 0 < val_fraction < 1:
        raise DataError(f"Expected 0 < val_fraction < 1 but got val_fraction={val_fraction}.")
    truth: dict[str, Any] = {}
    y: np.ndarray | None
    if spec == "digits":
        side = math.isqrt(data_dim) if data_dim else 8
        x, y, shape = _digits(side if side * side == data_dim else 8)
    elif spec in _TORCHVISION:
        x, y, shape = _torchvision(spec, data_dir, download)
    elif spec.startswith(("npz:", "npy:")):
        kind, _, path = spec.partition(":")
        x, y, shape = _array_file(kind, path)
    elif spec == "linear-gaussian":
        x, truth = linear_gaussian(seed=seed)
        y, shape = None, (x.shape[1],)
    else:
        raise DataError(
            f"Expected a data spec but got data={spec!r}. Try one of: digits, mnist, "
            f"fashion-mnist, npz:PATH, npy:PATH, linear-gaussian."
        )
    if limit is not None:
        x = x[:limit]
        y = None if y is None else y[:limit]
    if not np.isfinite(x).all():
        raise DataError(
            f"Expected finite values but data={spec!r} has "
            f"{int((~np.isfinite(x)).sum())} NaN or infinite value(s)."
        )
    if rescale:
        lo, hi = float(x.min()), float(x.max())
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    x_train, x_val, y_train, y_val = _split(x, y, seed=seed, val_fraction=val_fraction)
    ds = Dataset(spec, x_train, x_val, y_train, y_val, tuple(shape), "none", truth)
    if likelihood is None:
        return ds
    return prepare_for_likelihood(ds, likelihood, binarization=binarization, seed=seed)


def prepare_for_likelihood(
    ds: Dataset, likelihood: Likelihood, *, binarization: Binarization = "none", seed: int = 0
) -> Dataset:
    """Check the data fits the likelihood ([0, 1] for Bernoulli kinds) and binarise it."""
    check_choice("binarization", binarization, ("none", "static", "dynamic"))
    if likelihood in ("bernoulli", "continuous_bernoulli"):
        lo = min(float(ds.x_train.min()), float(ds.x_val.min()))
        hi = max(float(ds.x_train.max()), float(ds.x_val.max()))
        if lo < 0 or hi > 1:
            raise DataError(
                f"Expected data in [0, 1] for a {likelihood} likelihood but data={ds.name!r} spans "
                f"[{lo:g}, {hi:g}]. Try --rescale (maps min..max to [0, 1]) or a Gaussian loss."
            )
    elif binarization != "none":
        raise DataError(
            f"Expected binarization='none' for a {likelihood} likelihood but got "
            f"binarization={binarization!r}. Try --binarize none."
        )
    ds.binarization = binarization
    if binarization == "static":
        g = torch.Generator().manual_seed(seed + 1)
        ds.x_train, ds.x_val = binarize(ds.x_train, generator=g), binarize(ds.x_val, generator=g)
    return ds
