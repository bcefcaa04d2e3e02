"""Instructor checks for 08_regularization: comparisons with a reference composition, the prediction's
answer, and the challenge on digits the learner never sees. Never shipped to students (see
autograder/registry.py)."""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F

from autograder.learner import probe, seeded
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("08_regularization", instructor=True)
public = importlib.import_module("autograder.checks.08_regularization")

GRADER_SEED = 60_221
GRADER_TRAINING = 360
# The grader's digits are unlike the notebook's: mirrored left to right, their classes named otherwise.
GRADER_NAMES = torch.tensor([4, 9, 1, 7, 0, 6, 2, 8, 5, 3])


def _parts(model, num_features, hidden_units, num_classes):
    """The first Linear's, the batch norm's and the last Linear's tensors, from the model's state dict."""
    first, norm, last = public.layers(model, num_features, hidden_units, num_classes)
    state = model.state_dict()

    def tensor(layer, name):
        return state.get(f"{layer['name']}.{name}")

    return (tensor(first, "weight"), tensor(first, "bias")), norm, \
        {name: tensor(norm, name) for name in ("running_mean", "running_var", "weight", "bias")}, \
        (tensor(last, "weight"), tensor(last, "bias"))


@checks.of("RegularizedMLP", rule="layers")
def equals_the_reference_in_eval_mode(RegularizedMLP, num_samples=16, num_features=12, hidden_units=8,
                                      num_classes=3, p_drop=0.2, seed=0):
    model = public._build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    probe(public.warm_up, model, num_features, seed)
    model.eval()
    (w1, b1), norm, stats, (w2, b2) = _parts(model, num_features, hidden_units, num_classes)
    x = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed + 1))
    out = public._tensor(probe(public.outputs_of, model, x), "model(x)")
    if stats["running_mean"] is None:
        return  # no running statistics: the public checks say so
    expected = F.linear(F.relu(F.batch_norm(F.linear(x, w1, b1), stats["running_mean"], stats["running_var"],
                                            stats["weight"], stats["bias"], training=False, eps=norm["eps"])), w2, b2)
    expect(public.is_close(out, expected, atol=1e-5),
           f"in eval mode the output differs by up to {public.biggest_gap(out, expected):.3g} from Linear -> "
           "BatchNorm1d (running statistics) -> ReLU -> Linear.", "wrong_order")


@checks.of("RegularizedMLP", rule="layers")
def averages_to_the_network_without_dropout(RegularizedMLP, num_samples=16, num_features=12, hidden_units=8,
                                            num_classes=3, p_drop=0.2, seed=0):
    model = public._build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    (w1, b1), norm, stats, (w2, b2) = _parts(model, num_features, hidden_units, num_classes)
    model.train()
    x = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))
    h = F.linear(x, w1, b1)
    normed = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + norm["eps"])
    if stats["weight"] is not None:
        normed = normed * stats["weight"] + stats["bias"]
    expected = F.linear(F.relu(normed), w2, b2)
    probe(torch.random.manual_seed, seed)
    outs = torch.stack([public._tensor(probe(public.outputs_of, model, x), "model(x)") for _ in range(400)])
    mean, spread = outs.mean(0), outs.std(0)
    tolerance = 6 * spread / 20 + 1e-4
    if bool(((mean - expected).abs() <= tolerance).all()):
        return
    fail(f"averaged over many training-mode passes, the output differs by up to "
         f"{public.biggest_gap(mean, expected):.3g} from the network without dropout. With dropout between the ReLU "
         "and the last Linear layer (and the survivors scaled by 1 / (1 - p)), the two agree on average.",
         "wrong_order")


@checks.of("predict", rule="class_indices")
def agrees_with_a_real_network(predict, num_samples=24, num_features=6, num_classes=4, seed=0):
    with seeded(seed):
        network = public._Network(num_features, num_classes)
    public.warm_up(network, num_features, seed)
    X = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed + 5))
    network.eval()
    with torch.no_grad():
        expected = network(X).argmax(dim=1)
    theirs = probe(public._Network, num_features, num_classes)
    theirs.load_state_dict(network.state_dict())
    theirs.train()
    out = public._tensor(predict(theirs, X), "predict(model, X)")
    expect(out.shape == expected.shape and torch.equal(out.long(), expected),
           f"on a network with batch norm and dropout ({num_samples} samples, {num_classes} classes), predict's "
           "classes differ from the arg-max of its eval-mode logits.", "wrong_classes")


@checks.of("eval_prediction", rule="matches_the_run")
def predicts_what_eval_leaves_alone(eval_prediction):
    answer = tuple(eval_prediction())
    expect(answer == (True, True),
           f"you predicted {answer}; the cell shows (True, True): eval() switches dropout and batch norm to their "
           "prediction behaviour and nothing else. Autograd still records a graph (torch.no_grad() is a separate "
           "switch), and every parameter still requires grad.", "wrong_prediction")


def _mirrored(X: torch.Tensor) -> torch.Tensor:
    return X.reshape(-1, 8, 8).flip(-1).reshape(-1, 64).contiguous()


@checks.of("train_despite_noise", rule=("accuracy", "given_data_only"))
def reaches_the_target_despite_noisy_labels_on_the_graders_digits(train_despite_noise):
    X, labels, held_X, held_y = public.noisy_split(GRADER_SEED, GRADER_TRAINING)
    public.noisy_outcome(train_despite_noise, _mirrored(X), GRADER_NAMES[labels], _mirrored(held_X),
                         GRADER_NAMES[held_y], "the grader's own digits, mirrored, with other class names")
