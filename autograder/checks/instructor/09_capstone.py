"""Instructor checks for 09_capstone: comparisons with a reference and the challenge's hidden split.
Never shipped to students (see autograder/registry.py)."""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.checks._support import as_tensor, expect_shape
from autograder.registry import Checks
from autograder.results import expect

checks = Checks("09_capstone", instructor=True)
public = importlib.import_module("autograder.checks.09_capstone")

# The challenge's held-out split: another seed and a larger held-out part than the visible check's.
GRADER_SEED = 80_413
GRADER_VAL_FRACTION = 0.25


# --- confusion_matrix: the counts of a real (if small) classifier, against the reference loop ---


class _ImageProbe(nn.Module):
    """A small image classifier with batch norm and dropout."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.hidden = nn.Linear(64, 24)
        self.norm = nn.BatchNorm1d(24)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(24, num_classes)

    def forward(self, x):
        return self.out(self.drop(F.relu(self.norm(self.hidden(x.flatten(1))))))


def _probe_and_loader(num_samples: int, num_classes: int, seed: int, batch_size: int):
    torch.manual_seed(seed)
    model = _ImageProbe(num_classes)
    gen = torch.Generator().manual_seed(seed + 1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(16, 1, 8, 8, generator=gen) * 2)
    images = torch.rand(num_samples, 1, 8, 8, generator=gen)
    labels = torch.randint(0, num_classes, (num_samples,), generator=gen)
    return model, DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=False)


def _reference(model: nn.Module, loader, num_classes: int) -> torch.Tensor:
    model.eval()
    right = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.no_grad():
        for inputs, targets in loader:
            for t, p in zip(targets.tolist(), model(inputs).argmax(dim=1).tolist()):
                right[t, p] += 1
    return right


@checks.of("confusion_matrix")
def matches_the_counts_of_a_trained_model(confusion_matrix, num_samples=50, num_classes=10, batch_size=8, seed=0):
    model, loader = _probe_and_loader(num_samples, num_classes, seed, batch_size)
    expected = _reference(model, loader, num_classes)
    model.train()
    matrix = as_tensor(confusion_matrix(model, loader, num_classes=num_classes), "confusion_matrix(...)")
    expect_shape(matrix, (num_classes, num_classes), "the confusion matrix")
    wrong = int((matrix.long() != expected).sum())
    expect(wrong == 0, f"on another model and loader ({num_samples} samples, {num_classes} classes, batches of "
           f"{batch_size}), {wrong} of the {num_classes * num_classes} entries differ from the counts of (true class, "
           "arg-max prediction) pairs.", "wrong_counts")


# --- train_small_cnn: the same targets on a split the learner never sees ---


@checks.of("train_small_cnn")
def reaches_the_target_within_the_budgets_on_the_graders_split(train_small_cnn):
    public.challenge_outcome(train_small_cnn, GRADER_SEED, GRADER_VAL_FRACTION, "the grader's own split")
