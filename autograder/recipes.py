"""Fixed ways to train a model, for the notebooks that need one before the course has taught training.

Notebooks 03 and 04 end with a challenge graded by what a learner's design achieves once trained. The
training is not the learner's to write there: a notebook imports the recipe from here, its checks train
with the very same one (in the learner's process, as probes), so a demo and its test agree. The code
lives here rather than in a cell because it holds answers of exercises that come later (02's update
step, 05's training step): a notebook may call it, but does not show it.

Nothing here is an exercise's answer: no function of this module has the contract of one.
"""

from __future__ import annotations

import torch
from torch import nn


def circle_points(num_points: int, centre, radius: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)``: points uniform in the square [-2, 2]², float32 ``(num_points, 2)``, and their labels
    ``(num_points, 1)``: 1 inside the circle of that centre and radius, 0 outside. Seeded by ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.rand(num_points, 2, generator=gen) * 4 - 2
    y = (((X - torch.tensor(centre, dtype=torch.float32)) ** 2).sum(dim=1, keepdim=True) < radius ** 2).float()
    return X, y


def train_module(model: nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int = 500, lr: float = 0.5) -> float:
    """02's training for any module: ``steps`` full-batch steps of plain gradient descent with learning rate
    ``lr`` on the binary cross-entropy of ``model(X)`` (probabilities, clamped away from 0 and 1) against
    ``y``, moving every tensor that ``model.parameters()`` yields. Returns the loss before the last step."""
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        probs = model(X).clamp(1e-7, 1 - 1e-7)
        loss = -(y * probs.log() + (1 - y) * (1 - probs).log()).mean()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= lr * p.grad
                    p.grad = None
    return loss.item()


def train_spirals(model: nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int = 400, lr: float = 0.01) -> float:
    """04's challenge recipe: ``steps`` full-batch steps of the Adam optimizer with learning rate ``lr`` on
    ``nn.BCELoss`` of ``model(X)`` (probabilities) against ``y``. Returns the loss before the last step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCELoss()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
    return loss.item()

