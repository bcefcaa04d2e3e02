"""Instructor checks for 09_capstone: a confusion matrix compared with the counts of a real network, the
prediction's answer, and the challenge on digits the learner never sees. Never shipped to students (see
autograder/registry.py)."""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F
from torch import nn

from autograder.learner import probe, seeded
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("09_capstone", instructor=True)
public = importlib.import_module("autograder.checks.09_capstone")

# The grader's digits are unlike the notebook's: another split, mirrored left to right, their classes named
# otherwise. As many to train on as the visible test: the hidden test is there to find a design that knows the
# notebook's digits, not to ask for a better one (with a larger part held out, the hints' design fell to 94.9%).
GRADER_SEED = 80_413
GRADER_VAL_FRACTION = 0.2
GRADER_NAMES = torch.tensor([4, 9, 1, 7, 0, 6, 2, 8, 5, 3])


# --- confusion_matrix: the counts of a real (if small) network, against the reference loop ---


def _network(num_classes: int, seed: int) -> nn.Module:
    with seeded(seed):
        network = public.ImageNetwork(num_classes)
    gen = torch.Generator().manual_seed(seed + 1)
    network.train()
    with torch.no_grad():  # a few batches, so that the running statistics are not the initial 0 and 1
        for _ in range(3):
            network(torch.rand(16, 1, 8, 8, generator=gen) * 2)
    return network


def _counts(network: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    network.eval()
    counts = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.no_grad():
        for t, p in zip(targets.tolist(), network(inputs).argmax(dim=1).tolist()):
            counts[t, p] += 1
    return counts


@checks.of("confusion_matrix", rule="argmax")
def matches_the_counts_of_a_real_network(confusion_matrix, num_samples=50, num_classes=10, batch_size=8, seed=0):
    network = _network(num_classes, seed)
    gen = torch.Generator().manual_seed(seed + 2)
    inputs = torch.rand(num_samples, 1, 8, 8, generator=gen)
    targets = torch.randint(0, num_classes, (num_samples,), generator=gen)
    expected = _counts(network, inputs, targets, num_classes)
    model = probe(public.ImageNetwork, num_classes)  # the same network where the learner's code runs
    model.load_state_dict(network.state_dict())
    model.train()
    matrix = confusion_matrix(model, probe(public.loader_of, inputs, targets, batch_size), num_classes=num_classes)
    if not isinstance(matrix, torch.Tensor) or tuple(matrix.shape) != (num_classes, num_classes):
        fail(f"on another network and loader ({num_samples} samples, {num_classes} classes, batches of {batch_size}) "
             f"confusion_matrix returned {public._what(matrix)}; expected a ({num_classes}, {num_classes}) tensor.",
             "wrong_shape")
    wrong = int((matrix.double() != expected.double()).sum())
    expect(wrong == 0, f"on a real network with batch norm and dropout ({num_samples} samples, {num_classes} classes, "
           f"batches of {batch_size}), {wrong} of the {num_classes * num_classes} entries differ from the counts of "
           "(true class, arg-max prediction) pairs.", "wrong_counts")


# --- conv_prediction: what the cell after the tests prints ---

PREDICTED_LAYER = {"in_channels": 8, "out_channels": 16, "kernel_size": 3, "batch": (4, 8, 28, 28), "pool": 2}


@checks.of("conv_prediction", rule="matches_the_run")
def predicts_what_the_cell_prints(conv_prediction):
    layer = PREDICTED_LAYER
    k = layer["kernel_size"]
    parameters = layer["out_channels"] * layer["in_channels"] * k * k + layer["out_channels"]
    n, _, h, w = layer["batch"]
    shape = (n, layer["out_channels"], (h - k + 1) // layer["pool"], (w - k + 1) // layer["pool"])
    answer = conv_prediction()
    count, predicted = answer[0], tuple(answer[1])
    if count != parameters:
        fail(f"you predicted {count} parameters; the cell prints {parameters}. Each of the 16 filters has a 3 x 3 "
             "weight for every one of the 8 input channels, and one bias; the same weights serve every position, "
             "so the size of the images changes nothing.", "wrong_prediction")
    expect(predicted == shape, f"you predicted the shape {predicted}; the cell prints {shape}. Without padding a 3 x "
           "3 convolution loses a pixel on each border (28 -> 26), and pooling by 2 halves what is left.",
           "wrong_prediction")


# --- train_small_cnn: the same targets on digits the learner never sees ---


@checks.of("train_small_cnn", rule=("accuracy", "given_data_only"))
def reaches_the_target_within_the_budgets_on_the_graders_digits(train_small_cnn):
    images, labels, held_images, held_labels = public.visible_split(GRADER_SEED, GRADER_VAL_FRACTION)
    public.challenge_outcome(train_small_cnn, images.flip(-1).contiguous(), GRADER_NAMES[labels],
                             held_images.flip(-1).contiguous(), GRADER_NAMES[held_labels],
                             "the grader's own digits, mirrored, with other class names")
