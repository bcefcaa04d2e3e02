"""The course's data sets, as tensors, with nothing downloaded.

Both sets ship inside scikit-learn. Notebooks and checks load them from
here, so a notebook and a hidden test agree on what "the digits set" is.
"""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=None)
def _breast_cancer() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_breast_cancer as load

    features, labels = load(return_X_y=True)
    X = torch.tensor(features, dtype=torch.float32)
    X = (X - X.mean(dim=0)) / X.std(dim=0)
    y = torch.tensor(labels, dtype=torch.float32).reshape(-1, 1)
    return X, y


def load_breast_cancer() -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)``: 569 tumours, 30 standardised features (float32 ``(569, 30)``),
    labels float32 ``(569, 1)``, 1 for benign and 0 for malignant."""
    X, y = _breast_cancer()
    return X.clone(), y.clone()


@lru_cache(maxsize=None)
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits as load

    pixels, labels = load(return_X_y=True)
    X = torch.tensor(pixels, dtype=torch.float32) / 16.0
    y = torch.tensor(labels, dtype=torch.long)
    return X, y


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)``: 1797 handwritten digits as 8x8 images flattened to float32
    ``(1797, 64)`` with pixels in ``[0, 1]``, and labels long ``(1797,)`` in 0..9."""
    X, y = _digits()
    return X.clone(), y.clone()


@lru_cache(maxsize=None)
def _breast_cancer_raw() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_breast_cancer as load

    features, labels = load(return_X_y=True)
    return (torch.tensor(features, dtype=torch.float32),
            torch.tensor(labels, dtype=torch.float32).reshape(-1, 1))


def load_breast_cancer_raw() -> tuple[torch.Tensor, torch.Tensor]:
    """The breast cancer set as measured, before standardising: ``(X, y)`` with ``X`` float32
    ``(569, 30)`` in the measurements' own units (fractions for some, thousands for others)
    and ``y`` as :func:`load_breast_cancer` gives it."""
    X, y = _breast_cancer_raw()
    return X.clone(), y.clone()


def make_spirals(num_points: int = 400, noise: float = 0.2, turns: float = 1.5, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)``: two interleaved spiral arms in the plane, ``num_points`` points in all.

    ``X`` float32 ``(num_points, 2)``, ``y`` float32 ``(num_points, 1)``: 0 for one arm, 1 for the
    other, which is the first arm turned by half a circle, so no straight line separates them.
    Drawn from a ``torch.Generator`` seeded by ``seed``; ``noise`` is the std of the jitter.
    """
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_points) % 2
    # sqrt spreads the points evenly along the arm instead of crowding its centre
    radius = torch.rand(num_points, generator=gen).sqrt()
    angle = radius * turns * 2 * torch.pi + labels * torch.pi
    X = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1) * 3
    X = X + noise * torch.randn(num_points, 2, generator=gen)
    return X.float(), labels.float().reshape(-1, 1)
