"""Checks for 04_sequential: two-layer networks, nn.Sequential, and MLPs of any depth."""

from __future__ import annotations


import torch
from torch import nn
from torchinfo import summary

from autograder.checks._forbid import module_building_tools, unavailable
from autograder.checks._support import (
    one_cpu_core,
    as_int,
    as_tensor,
    biggest_gap,
    describe,
    expect_parameter_count,
    instantiate,
    is_close,
    number,
    parameter_count,
    plain_containers,
    shape_text,
)
from autograder.data import make_spirals
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("04_sequential")


def _inputs(num_samples: int, num_features: int, seed: int) -> torch.Tensor:
    return torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))


def _expect_linear(layer, n_in: int, n_out: int, where: str) -> None:
    if not isinstance(layer, nn.Linear):
        fail(f"{where} should be an nn.Linear({n_in}, {n_out}); found {describe(layer)}.", "wrong_layers")
    expect((layer.in_features, layer.out_features) == (n_in, n_out),
           f"{where} maps {layer.in_features} inputs to {layer.out_features} outputs; expected "
           f"nn.Linear({n_in}, {n_out}).", "wrong_layer_size")


def _expect_two_layer_count(model: nn.Module, name: str, num_features: int, hidden: int) -> None:
    expect_parameter_count(model, num_features * hidden + hidden + hidden + 1,
                           f"{name}({num_features}, hidden={hidden})",
                           f": {num_features}·{hidden} + {hidden} in the hidden layer and {hidden} + 1 in the output "
                           "layer")


def _expect_two_layer_output(out, X, linear1: nn.Linear, linear2: nn.Linear, name: str) -> None:
    """``out`` is sigmoid(linear2(relu(linear1(X)))), or a diagnosis of what it is instead."""
    n = X.shape[0]
    out = as_tensor(out, "model(X)")
    if tuple(out.shape) == (n,):
        fail(f"{name} returns shape ({n},); expected ({n}, 1). Do not squeeze the output: targets are (N, 1) "
             f"columns, and ({n},) against ({n}, 1) broadcasts to an ({n}, {n}) matrix in the loss.",
             "broadcast_shape")
    if tuple(out.shape) != (n, 1):
        fail(f"{name} returns shape {shape_text(out.shape)}; expected ({n}, 1), one probability per sample.",
             "wrong_shape")
    with torch.no_grad():
        hidden = linear1(X)
        score = linear2(torch.relu(hidden))
        expected = torch.sigmoid(score)
        if is_close(out, expected):
            return
        if is_close(out, score):
            fail(f"{name} returns the raw scores of the output layer: finish with a sigmoid.", "missing_sigmoid")
        if is_close(out, torch.sigmoid(expected)):
            fail(f"{name} applies the sigmoid twice.", "double_sigmoid")
        if is_close(out, torch.sigmoid(linear2(hidden))):
            fail(f"{name} has no ReLU between the layers, so the two linear layers collapse into one linear map. "
                 "Apply the ReLU to the hidden layer's output.", "missing_activation")
        if is_close(out, torch.sigmoid(linear2(torch.sigmoid(hidden)))):
            fail(f"{name} uses a sigmoid between the layers; the exercise asks for a ReLU there.", "wrong_activation")
    expect(is_close(out, expected),
           f"{name}(X) differs from sigmoid(linear2(relu(linear1(X)))) by up to {biggest_gap(out, expected):.3g}.",
           "wrong_values")


# --- TwoLayerModelNoSequential -------------------------------------------------------
#
# Clauses (text and contract) -> the check that enforces each:
#   attributes linear1 = Linear(num_features, hidden), linear2 = Linear(hidden, 1)
#                                          -> has_linear1_and_linear2_of_the_right_sizes
#   every weight and bias registered: (n·h + h) + (h + 1), 22 for 5 and 3
#                                          -> counts_every_weight_and_bias
#   forward = sigmoid(linear2(relu(linear1(x)))), shape (N, 1); relu/sigmoid as modules or functional
#                                          -> computes_sigmoid_of_linear2_of_relu_of_linear1
#   the output stays in the graph, both layers on its path
#                                          -> gradients_reach_both_layers


def _build(cls, name, *args):
    return instantiate(cls, *args, what=name)


@checks.of("TwoLayerModelNoSequential")
def has_linear1_and_linear2_of_the_right_sizes(TwoLayerModelNoSequential, num_features=5, hidden=3):
    model = _build(TwoLayerModelNoSequential, "TwoLayerModelNoSequential", num_features, hidden)
    for attribute, (n_in, n_out) in (("linear1", (num_features, hidden)), ("linear2", (hidden, 1))):
        layer = getattr(model, attribute, None)
        if layer is None:
            hidden_away = plain_containers(model)
            if hidden_away:
                fail(f"TwoLayerModelNoSequential has no attribute `{attribute}`; its layers sit in a plain Python "
                     f"list, `self.{hidden_away[0]}`, which nn.Module does not register. Assign each layer to its own "
                     f"attribute: self.{attribute} = nn.Linear({n_in}, {n_out}).", "layers_in_plain_list")
            fail(f"TwoLayerModelNoSequential should have an attribute `{attribute}`, an nn.Linear({n_in}, {n_out}).",
                 "missing_attribute")
        _expect_linear(layer, n_in, n_out, f"self.{attribute}")


@checks.of("TwoLayerModelNoSequential")
def counts_every_weight_and_bias(TwoLayerModelNoSequential, num_features=5, hidden=3):
    model = _build(TwoLayerModelNoSequential, "TwoLayerModelNoSequential", num_features, hidden)
    _expect_two_layer_count(model, "TwoLayerModelNoSequential", num_features, hidden)


@checks.of("TwoLayerModelNoSequential")
def computes_sigmoid_of_linear2_of_relu_of_linear1(TwoLayerModelNoSequential, num_features=5, hidden=3,
                                                   num_samples=8, seed=0):
    torch.manual_seed(seed)
    model = _build(TwoLayerModelNoSequential, "TwoLayerModelNoSequential", num_features, hidden)
    X = _inputs(num_samples, num_features, seed)
    _expect_two_layer_output(model(X), X, model.linear1, model.linear2, "TwoLayerModelNoSequential")


@checks.of("TwoLayerModelNoSequential")
def gradients_reach_both_layers(TwoLayerModelNoSequential, num_features=5, hidden=3, num_samples=8, seed=0):
    torch.manual_seed(seed)
    model = _build(TwoLayerModelNoSequential, "TwoLayerModelNoSequential", num_features, hidden)
    out = as_tensor(model(_inputs(num_samples, num_features, seed)), "model(X)")
    expect(out.requires_grad, "the output does not require grad: forward must not detach it.", "detached")
    out.sum().backward()
    for name in ("linear1", "linear2"):
        expect(getattr(model, name).weight.grad is not None,
               f"no gradient reached self.{name}.weight: forward must use self.{name} on the path to the output.",
               "detached")


# --- TwoLayerModel -------------------------------------------------------------------------
#
# Clauses -> checks:
#   one attribute `network`, an nn.Sequential    -> has_an_nn_Sequential_attribute_network
#   network holds Linear(n, h), ReLU, Linear(h, 1), Sigmoid in that order
#                                                -> network_is_Linear_ReLU_Linear_Sigmoid
#   the same 22 parameters (for 5 and 3)          -> counts_every_weight_and_bias
#   forward returns what those layers compute, in the graph
#                                                -> forward_runs_the_network


def _network(model: nn.Module) -> nn.Sequential:
    network = getattr(model, "network", None)
    if isinstance(network, (list, tuple)):
        fail("self.network is a plain Python list, so nn.Module registers none of its layers (parameters() finds "
             "nothing to train) and it has no forward. Wrap the layers: self.network = nn.Sequential(...).",
             "layers_in_plain_list")
    if isinstance(network, nn.ModuleList):
        fail("self.network is an nn.ModuleList: it registers the layers but has no forward of its own. Use "
             "nn.Sequential, which runs the layers in order.", "not_sequential")
    if not isinstance(network, nn.Sequential):
        fail(f"TwoLayerModel should have an attribute `network`, an nn.Sequential; found {describe(network)}.",
             "missing_attribute")
    return network


def _layer_names(network: nn.Sequential) -> str:
    return ", ".join(type(layer).__name__ for layer in network)


@checks.of("TwoLayerModel")
def has_an_nn_Sequential_attribute_network(TwoLayerModel, num_features=5, hidden=3):
    _network(_build(TwoLayerModel, "TwoLayerModel", num_features, hidden))


@checks.of("TwoLayerModel")
def network_is_Linear_ReLU_Linear_Sigmoid(TwoLayerModel, num_features=5, hidden=3):
    network = _network(_build(TwoLayerModel, "TwoLayerModel", num_features, hidden))
    layers = list(network)
    kinds = [type(layer) for layer in layers]
    if kinds == [nn.Linear, nn.ReLU, nn.Linear]:
        fail("self.network ends with the second Linear layer; the exercise puts the nn.Sigmoid() inside the "
             "Sequential too, as its last layer, so that the network alone computes the probabilities.",
             "missing_sigmoid")
    expect(kinds == [nn.Linear, nn.ReLU, nn.Linear, nn.Sigmoid],
           f"self.network holds {_layer_names(network) or 'no layers'}; expected Linear, ReLU, Linear, Sigmoid, "
           "in that order (activations as modules: nn.ReLU(), nn.Sigmoid()).", "wrong_layers")
    _expect_linear(layers[0], num_features, hidden, "the first layer of self.network")
    _expect_linear(layers[2], hidden, 1, "the third layer of self.network")


@checks.of("TwoLayerModel")
def counts_every_weight_and_bias(TwoLayerModel, num_features=5, hidden=3):  # noqa: F811
    model = _build(TwoLayerModel, "TwoLayerModel", num_features, hidden)
    _expect_two_layer_count(model, "TwoLayerModel", num_features, hidden)


@checks.of("TwoLayerModel")
def forward_runs_the_network(TwoLayerModel, num_features=5, hidden=3, num_samples=8, seed=0):
    torch.manual_seed(seed)
    model = _build(TwoLayerModel, "TwoLayerModel", num_features, hidden)
    network = _network(model)
    linears = [layer for layer in network if isinstance(layer, nn.Linear)]
    if len(linears) != 2:
        fail(f"self.network holds {len(linears)} Linear layers; expected 2.", "wrong_layers")
    X = _inputs(num_samples, num_features, seed)
    out = model(X)
    _expect_two_layer_output(out, X, linears[0], linears[1], "TwoLayerModel")
    out.sum().backward()
    expect(all(layer.weight.grad is not None for layer in linears),
           "no gradient reached the layers of self.network: forward must return self.network(x) without "
           "detaching it.", "detached")


# --- make_mlp -------------------------------------------------------------------------------
#
# Clauses -> checks:
#   returns an nn.Sequential of Linear(sizes[i], sizes[i+1]) (with bias), for a list or a tuple
#                                -> returns_an_nn_Sequential_of_Linear_layers_of_the_given_sizes
#   an activation between consecutive layers, none after the last, a fresh one per gap
#                                -> puts_a_fresh_activation_between_consecutive_layers_and_none_after_the_last
#   the `activation` argument is used (nn.Tanh, nn.PReLU)
#                                -> uses_the_activation_class_it_is_given
#   forward applies every registered layer in order, activations included (a Sequential subclass
#   that skips them fails); output (N, sizes[-1]); parameter count of the formula
#                                -> computes_the_layers_in_order
#   ValueError for fewer than two sizes -> raises_ValueError_for_fewer_than_two_sizes
#   (hidden) the same function as a reference MLP with the same weights, on other sizes
#                                -> instructor: matches_a_reference_mlp_with_the_same_weights


def _mlp(make_mlp, sizes, **kwargs) -> nn.Sequential:
    try:
        result = make_mlp(sizes, **kwargs)
    except TypeError as exc:
        if "is not a Module subclass" in str(exc):
            fail(f"building the layers raised `{exc}`: `activation` is a class such as nn.ReLU, and nn.Sequential "
                 "needs layers. Call it, activation(), to make a fresh layer for each gap.", "activation_not_called")
        raise
    if isinstance(result, (list, tuple)):
        fail(f"make_mlp returned a plain Python {type(result).__name__}; return nn.Sequential(*layers), which "
             "registers the layers and runs them in order.", "layers_in_plain_list")
    if isinstance(result, nn.ModuleList):
        fail("make_mlp returned an nn.ModuleList, which has no forward; return nn.Sequential(*layers).",
             "not_sequential")
    if not isinstance(result, nn.Sequential):
        fail(f"make_mlp should return an nn.Sequential; it returned {describe(result)}.", "not_sequential")
    return result


@checks.of("make_mlp")
def returns_an_nn_Sequential_of_Linear_layers_of_the_given_sizes(make_mlp, sizes=(6, 5, 4, 3)):
    for form in (list(sizes), tuple(sizes), [sizes[0], sizes[-1]]):
        network = _mlp(make_mlp, form)
        linears = [layer for layer in network if isinstance(layer, nn.Linear)]
        expected = [(form[i], form[i + 1]) for i in range(len(form) - 1)]
        found = [(layer.in_features, layer.out_features) for layer in linears]
        expect(found == expected,
               f"make_mlp({form}) holds Linear layers {found or 'none'}; expected {expected}: one layer from each "
               "size to the next.", "wrong_layer_size")
        no_bias = [i for i, layer in enumerate(linears) if layer.bias is None]
        expect(not no_bias, f"make_mlp({form}): Linear layer {no_bias[0] if no_bias else ''} has no bias; keep "
               "the default bias=True.", "missing_bias")


@checks.of("make_mlp")
def puts_a_fresh_activation_between_consecutive_layers_and_none_after_the_last(make_mlp, sizes=(6, 5, 4, 3)):
    network = _mlp(make_mlp, list(sizes))
    layers = list(network)
    if not layers:
        fail(f"make_mlp({list(sizes)}) returned an empty nn.Sequential.", "wrong_layers")
    if not isinstance(layers[-1], nn.Linear):
        fail(f"make_mlp({list(sizes)}) ends with {type(layers[-1]).__name__}, after the last Linear layer. The "
             "last layer's raw outputs are the network's result: an activation there (a ReLU clips every negative "
             "score to 0) changes what the network can express. Put activations only between layers.",
             "activation_after_last")
    if not isinstance(layers[0], nn.Linear):
        fail(f"make_mlp({list(sizes)}) starts with {type(layers[0]).__name__}; the first layer is "
             f"Linear({sizes[0]}, {sizes[1]}), and activations go only between layers.", "wrong_layers")
    activations = []
    for position, (before, after) in enumerate(zip(layers, layers[1:])):
        if isinstance(before, nn.Linear) and isinstance(after, nn.Linear):
            fail(f"in make_mlp({list(sizes)}) the Linear layers at positions {position} and {position + 1} follow "
                 "each other with no activation between them, so they collapse into one linear map.",
                 "missing_activation")
        if not isinstance(before, nn.Linear) and not isinstance(after, nn.Linear):
            fail(f"make_mlp({list(sizes)}) has two activations in a row at positions {position} and "
                 f"{position + 1}: {_layer_names(network)}. Put exactly one between consecutive layers.",
                 "wrong_layers")
        if not isinstance(after, nn.Linear):
            activations.append(after)
    for act in activations:
        expect(isinstance(act, nn.ReLU),
               f"with the default activation=nn.ReLU, make_mlp puts {type(act).__name__} between the layers.",
               "activation_ignored")
    expect(len({id(act) for act in activations}) == len(activations),
           f"make_mlp({list(sizes)}) puts one and the same activation object in {len(activations)} places: it was "
           "created once and reused. Call activation() once per gap so each position gets a fresh layer (an "
           "activation with parameters, such as nn.PReLU, would otherwise share them).", "shared_activation")


@checks.of("make_mlp")
def uses_the_activation_class_it_is_given(make_mlp, sizes=(6, 5, 4, 3)):
    for activation in (nn.Tanh, nn.PReLU):
        network = _mlp(make_mlp, list(sizes), activation=activation)
        between = [layer for layer in network if not isinstance(layer, nn.Linear)]
        expect(len(between) == len(sizes) - 2 and all(type(layer) is activation for layer in between),
               f"make_mlp({list(sizes)}, activation=nn.{activation.__name__}) puts "
               f"[{', '.join(type(layer).__name__ for layer in between)}] between its Linear layers; expected "
               f"{len(sizes) - 2} × {activation.__name__}. Use the `activation` argument instead of a fixed nn.ReLU.",
               "activation_ignored")
    # the formula the notebook states, plus one learned slope per PReLU
    expected = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:])) + len(sizes) - 2
    found = parameter_count(network)
    expect(found == expected,
           f"make_mlp({list(sizes)}, activation=nn.PReLU) has {found} parameters; expected {expected}, with one "
           "learned slope in each of its PReLU layers. Create a fresh activation() for every gap.",
           "shared_activation")


@checks.of("make_mlp")
def computes_the_layers_in_order(make_mlp, sizes=(6, 5, 4, 3), num_samples=8, seed=0):
    torch.manual_seed(seed)
    network = _mlp(make_mlp, list(sizes))
    X = _inputs(num_samples, sizes[0], seed)
    out = as_tensor(network(X), "make_mlp(sizes)(X)")
    expect(tuple(out.shape) == (num_samples, sizes[-1]),
           f"the network maps a batch of shape {shape_text(X.shape)} to {shape_text(out.shape)}; expected "
           f"({num_samples}, {sizes[-1]}).", "wrong_shape")
    # What the network computes must be what its own registered layers compute in order: a Sequential
    # subclass (or a patched forward) that skips the activations would otherwise look right by its layers.
    layers = list(nn.Module.children(network))
    with torch.no_grad():
        expected = X
        for layer in layers:
            expected = layer(expected)
        if not is_close(out, expected):
            linear_only = X
            for layer in layers:
                linear_only = layer(linear_only) if isinstance(layer, nn.Linear) else linear_only
            skipped = " It equals the Linear layers alone: the activations are skipped." if is_close(
                out, linear_only) else ""
            fail(f"make_mlp({list(sizes)})(X) differs by up to {biggest_gap(out, expected):.3g} from running X "
                 f"through the network's own layers in order ({_layer_names(network)}).{skipped} Return a plain "
                 "nn.Sequential(*layers), whose forward applies every layer, activations included.",
                 "forward_skips_layers")
    expect_parameter_count(network, sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:])),
                           f"make_mlp({list(sizes)})", ", the sum of n_in·n_out + n_out over its layers")


@checks.of("make_mlp")
def raises_ValueError_for_fewer_than_two_sizes(make_mlp):
    for sizes in ([5], []):
        try:
            result = make_mlp(sizes)
        except ValueError:
            continue
        except Exception as exc:
            fail(f"make_mlp({sizes}) raised {type(exc).__name__}: {exc}; the exercise asks for ValueError. Check "
                 "`len(sizes) < 2` first and raise ValueError.", "wrong_exception")
        fail(f"make_mlp({sizes}) returned {describe(result)}: fewer than two sizes describe no layer. "
             "Raise ValueError.", "no_value_error")


# --- mlp_param_count ------------------------------------------------------------------------
#
# Clauses -> checks:
#   the count torchinfo gives for the built network, a Python int
#                                -> agrees_with_torchinfo_on_several_networks
#   from the formula, without building modules (works for sizes too big to build)
#                                -> counts_without_building_the_model


def _count(mlp_param_count, sizes) -> int:
    return as_int(mlp_param_count(sizes), f"mlp_param_count({list(sizes)})")


@checks.of("mlp_param_count")
def agrees_with_torchinfo_on_several_networks(mlp_param_count, sizes=(64, 32, 10)):
    for case in (tuple(sizes), (5, 3, 1), (10, 1), (30, 16, 8, 1), (64, 128, 64, 10)):
        # torchinfo counts a stack of the Linear layers alone: activations hold no parameters
        stack = nn.Sequential(*(nn.Linear(n_in, n_out) for n_in, n_out in zip(case, case[1:])))
        expected = int(summary(stack, verbose=0).total_params)
        found = _count(mlp_param_count, list(case))
        outputs = sum(case[1:])
        if found == expected - outputs:
            fail(f"mlp_param_count({list(case)}) = {found}; torchinfo counts {expected}. The difference, {outputs}, "
                 "is the biases: each Linear(n_in, n_out) adds n_out of them to its n_in·n_out weights.",
                 "missing_bias")
        if found == expected - outputs + sum(case[:-1]):
            fail(f"mlp_param_count({list(case)}) = {found}; torchinfo counts {expected}. A layer has one bias per "
                 "output (n_out), not per input.", "wrong_count")
        expect(found == expected,
               f"mlp_param_count({list(case)}) = {found}; torchinfo counts {expected}. Sum n_in·n_out + n_out over "
               "consecutive sizes.", "wrong_count")


@checks.of("mlp_param_count")
def counts_without_building_the_model(mlp_param_count, sizes=(64, 32, 10)):
    huge = (100_000, 100_000, 100_000, 10)
    for case in (tuple(sizes), huge):
        with unavailable("mlp_param_count", module_building_tools(), code="built_model",
                         why="count from the formula, sum of n_in·n_out + n_out, without building layers. "
                             f"(A network of sizes {list(huge)} would need 80 GB of memory just to be counted.)"):
            found = _count(mlp_param_count, list(case))
        expected = sum(a * b + b for a, b in zip(case[:-1], case[1:]))
        expect(found == expected, f"mlp_param_count({list(case)}) = {found}; expected {expected}.", "wrong_count")


# --- spiral_classifier (challenge) -----------------------------------------------------------
#
# Graded by outcome: the learner designs the network, the check trains it with the notebook's fixed
# recipe (train_spirals) and measures it on spiral points it never trained on.
# Clauses -> checks:
#   a function returning a fresh, untrained nn.Module: (N, 2) points -> (N, 1) probabilities in [0, 1]
#                                -> returns_a_fresh_model_from_points_to_probabilities
#   at most SPIRAL_BUDGET parameters   -> returns_a_fresh_model_from_points_to_probabilities
#   after train_spirals on 400 points, at least SPIRAL_TARGET accuracy on 400 other points
#                                -> separates_the_spirals_after_training (the notebook's spirals),
#                                   instructor: separates_spirals_it_never_saw (hidden seeds)

SPIRAL_BUDGET = 5000
SPIRAL_TARGET = 0.92
SPIRAL_POINTS = 400


def _spiral_model(spiral_classifier, seed: int) -> nn.Module:
    if not callable(spiral_classifier) or isinstance(spiral_classifier, nn.Module):
        fail(f"spiral_classifier should be a function that returns a new model; it is {describe(spiral_classifier)}.",
             "wrong_type")
    torch.manual_seed(seed)
    model = spiral_classifier()
    if isinstance(model, type):
        fail("spiral_classifier returned a class; return an instance of it (call it: Model()).", "wrong_type")
    if not isinstance(model, nn.Module):
        fail(f"spiral_classifier should return an nn.Module; it returned {describe(model)}.", "wrong_type")
    count = parameter_count(model)
    expect(count <= SPIRAL_BUDGET,
           f"spiral_classifier's model has {count:,} parameters; the budget is {SPIRAL_BUDGET:,}. Use fewer or "
           "narrower hidden layers (make_mlp and mlp_param_count tell you the size).", "over_budget")
    expect(count > 0, "spiral_classifier's model has no parameters to train.", "not_registered")
    return model


def _spiral_probabilities(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    out = as_tensor(model(X), "model(X)").detach()
    n = X.shape[0]
    expect(tuple(out.shape) == (n, 1),
           f"the model maps points of shape {shape_text(X.shape)} to {shape_text(out.shape)}; expected ({n}, 1), "
           "one probability per point.", "wrong_shape")
    expect(bool(((out >= 0) & (out <= 1)).all()),
           f"the model's outputs reach {number(float(out.min()))} .. {number(float(out.max()))}; they should be "
           "probabilities in [0, 1], as train_spirals' nn.BCELoss needs. End the network with nn.Sigmoid().",
           "missing_sigmoid")
    return out


def train_spirals(model: nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int = 400, lr: float = 0.01) -> float:
    """The notebook's training recipe for the challenge (the same code as its given cell): full-batch
    Adam on nn.BCELoss. Returns the last loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCELoss()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
    return loss.item()


def spiral_accuracy(spiral_classifier, train_seed: int, test_seed: int, model_seed: int) -> float:
    """Train the learner's design on one draw of the spirals; its accuracy on another."""
    model = _spiral_model(spiral_classifier, model_seed)
    X, y = make_spirals(SPIRAL_POINTS, seed=train_seed)
    X_test, y_test = make_spirals(SPIRAL_POINTS, seed=test_seed)
    _spiral_probabilities(model, X[:8])
    with one_cpu_core():  # tiny models train fastest on one thread
        train_spirals(model, X, y)
        model.eval()
        with torch.no_grad():
            predicted = (_spiral_probabilities(model, X_test) > 0.5).float()
    return float((predicted == y_test).float().mean())


def expect_spiral_accuracy(accuracy: float, where: str) -> None:
    expect(accuracy >= SPIRAL_TARGET,
           f"trained with train_spirals, your design classifies {accuracy:.1%} of {where} right; the target is "
           f"{SPIRAL_TARGET:.0%}. A straight boundary gets about 60%. Give the boundary room to bend: more hidden "
           "units, or another hidden layer, with an activation between layers.", "below_target")


@checks.of("spiral_classifier")
def returns_a_fresh_model_from_points_to_probabilities(spiral_classifier, seed=0):
    first = _spiral_model(spiral_classifier, seed)
    _spiral_probabilities(first, make_spirals(16, seed=seed)[0])
    second = _spiral_model(spiral_classifier, seed + 1)
    expect(second is not first and not any(p is q for p, q in zip(first.parameters(), second.parameters())),
           "two calls of spiral_classifier return the same model: build a new one on every call, so that every "
           "run starts untrained.", "not_fresh")


@checks.of("spiral_classifier")
def separates_the_spirals_after_training(spiral_classifier, seed=0):
    # the notebook trains on make_spirals(seed=0) and shows make_spirals(seed=1) as new points
    expect_spiral_accuracy(spiral_accuracy(spiral_classifier, train_seed=seed, test_seed=seed + 1, model_seed=seed),
                           "the notebook's new spiral points")
