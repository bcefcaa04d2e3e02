"""Checks for 04_sequential: two-layer networks, nn.Sequential, and MLPs of any depth.

The learner's classes and functions arrive as references into the learner's process (see
:mod:`autograder.learner`): networks are built there, and what a check compares (outputs, parameter
copies, the facts the probes read) comes back here as data. Next to each exercise's checks, a comment
lists the rules of its statement in the notebook and the check that enforces each.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from autograder.checks._forbid import call_without, module_building_tools
from autograder.checks._modules import (
    as_model,
    attribute,
    build,
    expect_parameter_count,
    gradients_from_output,
    module_facts,
    parameter_total,
    what_is,
)
from autograder.checks._support import (
    as_int,
    as_tensor,
    biggest_gap,
    is_close,
    number,
    shape_text,
)
from autograder.data import make_spirals
from autograder.learner import is_callable, is_class, is_instance, is_remote, probe, seeded
from autograder.recipes import train_module, train_spirals
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("04_sequential")


def _inputs(num_samples: int, num_features: int, seed: int) -> torch.Tensor:
    return torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))


def _type_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def children_facts(module) -> list[dict]:
    """A probe: each module registered directly in ``module``, in order, as many times as it is registered
    (``children()`` lists a module used twice only once). Its class (``module.QualName``), its sizes and
    whether it has a bias when it is an nn.Linear, and the position of the first child that is this very
    object (its own position unless an object is used twice)."""
    children = list(module._modules.values())
    facts = []
    for position, child in enumerate(children):
        first = next(i for i, other in enumerate(children) if other is child)
        entry = {"type": _type_path(type(child)), "linear": None, "first": first}
        if isinstance(child, nn.Linear):
            entry["linear"] = (int(child.in_features), int(child.out_features), child.bias is not None)
        facts.append(entry)
    return facts


def _short(facts: list[dict]) -> str:
    return ", ".join(entry["type"].rsplit(".", 1)[-1] for entry in facts) or "no layers"


def _expect_linear(layer, n_in: int, n_out: int, where: str) -> None:
    if layer is None or not is_instance(layer, nn.Linear):
        fail(f"{where} should be an nn.Linear from {n_in} inputs to {n_out} outputs; found {what_is(layer)}.",
             "wrong_layers")
    sizes = (layer.in_features, layer.out_features)
    expect(sizes == (n_in, n_out), f"{where} maps {sizes[0]} inputs to {sizes[1]} outputs; expected {n_in} to {n_out}.",
           "wrong_layer_size")


def _weights(layer) -> tuple[torch.Tensor, torch.Tensor | None]:
    weight, bias = layer.weight, layer.bias
    return weight.detach(), None if bias is None else bias.detach()


def _affine(X, weights) -> torch.Tensor:
    weight, bias = weights
    return X @ weight.T + (0 if bias is None else bias)


def _expect_two_layer_output(out, X, first, second, name: str) -> None:
    """``out`` is sigmoid(second(relu(first(X)))) for the weights (weight, bias) of the two layers, or a
    diagnosis of what it is instead."""
    n = X.shape[0]
    out = as_tensor(out, "model(X)")
    if tuple(out.shape) == (n,):
        fail(f"{name} returns shape ({n},); expected ({n}, 1). Targets are (N, 1) columns, and ({n},) against "
             f"({n}, 1) broadcasts to an ({n}, {n}) matrix in the loss.", "broadcast_shape",
             fix="do not squeeze the output")
    if tuple(out.shape) != (n, 1):
        fail(f"{name} returns shape {shape_text(out.shape)}; expected ({n}, 1), one probability per sample.",
             "wrong_shape")
    hidden = _affine(X, first)
    score = _affine(torch.relu(hidden), second)
    expected = torch.sigmoid(score)
    if is_close(out, expected):
        return
    if is_close(out, score):
        fail(f"{name} returns the raw scores of the output layer, not probabilities.", "missing_sigmoid")
    if is_close(out, torch.sigmoid(expected)):
        fail(f"{name} applies the sigmoid twice: its outputs all lie between 0.5 and 0.73.", "double_sigmoid")
    if is_close(out, torch.sigmoid(_affine(hidden, second))):
        fail(f"{name} has no ReLU between the layers, so the two linear layers collapse into one linear map.",
             "missing_activation")
    if is_close(out, torch.sigmoid(_affine(torch.sigmoid(hidden), second))):
        fail(f"{name} uses a sigmoid between the layers; the exercise asks for a ReLU there.", "wrong_activation")
    fail(f"{name}(X) differs from sigmoid(linear2(relu(linear1(X)))) by up to {biggest_gap(out, expected):.3g}.",
         "wrong_values")


def _expect_two_layer_count(model, name: str, num_features: int, hidden: int) -> None:
    expect_parameter_count(probe(module_facts, model), num_features * hidden + hidden + hidden + 1,
                           f"{name}({num_features}, hidden={hidden})",
                           f" ({num_features}·{hidden} + {hidden} in the hidden layer, {hidden} + 1 in the output "
                           "layer)")


# --- TwoLayerModelNoSequential -------------------------------------------------------
#
# Rules of TwoLayerModelNoSequential -> checks:
#   layers           linear1: num_features -> hidden, linear2: hidden -> 1   -> has_linear1_and_linear2_of_the_right_sizes
#   forward_formula  sigmoid(linear2(relu(linear1(x)))), (N, 1)              -> computes_sigmoid_of_linear2_of_relu_of_linear1
#   all_registered   every weight and bias registered (22 for 5 and 3)       -> counts_every_weight_and_bias
#   in_graph         gradients reach both layers                            -> gradients_reach_both_layers

_NO_SEQ = "TwoLayerModelNoSequential"


@checks.of(_NO_SEQ, rule="layers")
def has_linear1_and_linear2_of_the_right_sizes(TwoLayerModelNoSequential, num_features=5, hidden=3):
    model = build(TwoLayerModelNoSequential, num_features, hidden, what=_NO_SEQ)
    for name, (n_in, n_out) in (("linear1", (num_features, hidden)), ("linear2", (hidden, 1))):
        layer = attribute(model, name)
        if layer is None:
            plain = probe(module_facts, model)["plain"]
            if plain:
                fail(f"{_NO_SEQ} has no attribute `{name}`; its layers sit in a plain Python {plain[0][1]}, "
                     f"`self.{plain[0][0]}`, which nn.Module does not register.", "layers_in_plain_list",
                     fix=f"assign each layer to its own attribute, such as self.{name}")
            fail(f"{_NO_SEQ} should have an attribute `{name}`, an nn.Linear from {n_in} to {n_out}.",
                 "missing_attribute")
        _expect_linear(layer, n_in, n_out, f"self.{name}")


@checks.of(_NO_SEQ, rule="all_registered")
def counts_every_weight_and_bias(TwoLayerModelNoSequential, num_features=5, hidden=3):
    model = build(TwoLayerModelNoSequential, num_features, hidden, what=_NO_SEQ)
    _expect_two_layer_count(model, _NO_SEQ, num_features, hidden)


@checks.of(_NO_SEQ, rule="forward_formula")
def computes_sigmoid_of_linear2_of_relu_of_linear1(TwoLayerModelNoSequential, num_features=5, hidden=3,
                                                   num_samples=8, seed=0):
    model = build(TwoLayerModelNoSequential, num_features, hidden, what=_NO_SEQ, seed=seed)
    X = _inputs(num_samples, num_features, seed)
    _expect_two_layer_output(model(X), X, _weights(model.linear1), _weights(model.linear2), _NO_SEQ)


@checks.of(_NO_SEQ, rule="in_graph")
def gradients_reach_both_layers(TwoLayerModelNoSequential, num_features=5, hidden=3, num_samples=8, seed=0):
    model = build(TwoLayerModelNoSequential, num_features, hidden, what=_NO_SEQ, seed=seed)
    out, reached = probe(gradients_from_output, model, _inputs(num_samples, num_features, seed))
    expect(as_tensor(out, "model(X)").requires_grad, "the output does not require grad: forward took it out of the "
           "graph (a detach, .data, or torch.no_grad), so nothing would train.", "detached")
    for name in ("linear1", "linear2"):
        expect(f"{name}.weight" in reached,
               f"no gradient reached self.{name}.weight: forward must use self.{name} on the path to the output.",
               "detached")


# --- TwoLayerModel -------------------------------------------------------------------------
#
# Rules of TwoLayerModel -> checks:
#   network_attribute  one attribute `network`, an nn.Sequential            -> has_an_nn_Sequential_attribute_network
#   layers_in_order    Linear(n, h), ReLU, Linear(h, 1), Sigmoid, in order   -> network_is_Linear_ReLU_Linear_Sigmoid
#   all_registered     the same parameters (22 for 5 and 3)                  -> counts_every_weight_and_bias_of_the_network
#   forward_is_network forward returns what the network computes, in the graph -> forward_runs_the_network


def _network(model):
    network = attribute(model, "network")
    if type(network) in (list, tuple):
        fail("self.network is a plain Python list, so nn.Module registers none of its layers (parameters() finds "
             "nothing to train) and it has no forward.", "layers_in_plain_list",
             fix="self.network = nn.Sequential(...)")
    if is_instance(network, nn.ModuleList):
        fail("self.network is an nn.ModuleList: it registers the layers but has no forward of its own; the "
             "exercise asks for the container that runs its layers in order.", "not_sequential")
    if network is None or not is_instance(network, nn.Sequential):
        fail(f"TwoLayerModel should have an attribute `network`, an nn.Sequential; found {what_is(network)}.",
             "missing_attribute")
    return network


@checks.of("TwoLayerModel", rule="network_attribute")
def has_an_nn_Sequential_attribute_network(TwoLayerModel, num_features=5, hidden=3):
    _network(build(TwoLayerModel, num_features, hidden, what="TwoLayerModel"))


_TWO_LAYER_KINDS = [_type_path(nn.Linear), _type_path(nn.ReLU), _type_path(nn.Linear), _type_path(nn.Sigmoid)]


@checks.of("TwoLayerModel", rule="layers_in_order")
def network_is_Linear_ReLU_Linear_Sigmoid(TwoLayerModel, num_features=5, hidden=3):
    network = _network(build(TwoLayerModel, num_features, hidden, what="TwoLayerModel"))
    facts = probe(children_facts, network)
    kinds = [entry["type"] for entry in facts]
    if kinds == _TWO_LAYER_KINDS[:3]:
        fail("self.network ends with the second Linear layer; the sigmoid belongs inside the Sequential too, as its "
             "last layer, so that the network alone computes the probabilities.", "missing_sigmoid")
    expect(kinds == _TWO_LAYER_KINDS,
           f"self.network holds {_short(facts)}; expected Linear, ReLU, Linear, Sigmoid, in that order (inside a "
           "Sequential, activations are modules).", "wrong_layers")
    for position, (n_in, n_out) in ((0, (num_features, hidden)), (2, (hidden, 1))):
        found = facts[position]["linear"][:2]
        expect(found == (n_in, n_out), f"layer {position} of self.network maps {found[0]} inputs to {found[1]} "
               f"outputs; expected {n_in} to {n_out}.", "wrong_layer_size")


@checks.of("TwoLayerModel", rule="all_registered")
def counts_every_weight_and_bias_of_the_network(TwoLayerModel, num_features=5, hidden=3):
    model = build(TwoLayerModel, num_features, hidden, what="TwoLayerModel")
    _expect_two_layer_count(model, "TwoLayerModel", num_features, hidden)


@checks.of("TwoLayerModel", rule="forward_is_network")
def forward_runs_the_network(TwoLayerModel, num_features=5, hidden=3, num_samples=8, seed=0):
    model = build(TwoLayerModel, num_features, hidden, what="TwoLayerModel", seed=seed)
    network = _network(model)
    linears = [layer for layer in network.children() if is_instance(layer, nn.Linear)]
    expect(len(linears) == 2, f"self.network holds {len(linears)} Linear layers; expected 2.", "wrong_layers")
    X = _inputs(num_samples, num_features, seed)
    out, reached = probe(gradients_from_output, model, X)
    _expect_two_layer_output(out, X, _weights(linears[0]), _weights(linears[1]), "TwoLayerModel")
    expect(len([name for name in reached if name.endswith("weight")]) == 2,
           "no gradient reached the layers of self.network: forward must return what the network computes, without "
           "detaching it.", "detached")


# --- ResidualMLP (repair) ---------------------------------------------------------------------
#
# Rules of ResidualMLP -> checks:
#   same_computation  relu(stem(x)), then x + relu(block(x)) per block, then sigmoid(head(x))
#                                                            -> computes_what_the_given_network_computes
#   names_kept        stem, blocks[i], head: the layers, with their sizes
#                                                            -> keeps_stem_blocks_and_head
#   all_trained       every layer registered, each block its own, and changed by training
#                                                            -> registers_every_layer_each_block_its_own,
#                                                               training_changes_every_layer


def _residual_layers(model, num_features: int, width: int, depth: int) -> list:
    """The model's layers in the order of its computation: stem, the blocks, head (checked for size)."""
    stem, head, blocks = attribute(model, "stem"), attribute(model, "head"), attribute(model, "blocks")
    _expect_linear(stem, num_features, width, "self.stem")
    _expect_linear(head, width, 1, "self.head")
    if blocks is None:
        fail("ResidualMLP has no attribute `blocks`; the given network keeps its blocks there, and the repaired one "
             "keeps them too.", "missing_attribute")
    count = len(blocks)
    expect(count == depth, f"ResidualMLP(..., depth={depth}) holds {count} blocks; expected {depth}.",
           "wrong_layers")
    layers = [stem]
    for i in range(depth):
        block = blocks[i]
        _expect_linear(block, width, width, f"self.blocks[{i}]")
        layers.append(block)
    return layers + [head]


@checks.of("ResidualMLP", rule="names_kept")
def keeps_stem_blocks_and_head(ResidualMLP, num_features=5, width=8, depth=2):
    _residual_layers(build(ResidualMLP, num_features, width, depth, what="ResidualMLP"), num_features, width, depth)


@checks.of("ResidualMLP", rule="all_trained")
def registers_every_layer_each_block_its_own(ResidualMLP, num_features=5, width=8, depth=2):
    model = build(ResidualMLP, num_features, width, depth, what="ResidualMLP")
    facts = probe(module_facts, model)
    block = width * width + width
    expected = num_features * width + width + depth * block + width + 1
    found = parameter_total(facts)
    if found == expected - (depth - 1) * block and depth > 1:
        fail(f"ResidualMLP(..., depth={depth}) has {found} parameters; expected {expected}. That is one block's "
             f"weights for all {depth} blocks: the same layer object is used in every position, so the blocks share "
             "their weights and train as one.", "shared_block")
    expect_parameter_count(facts, expected, f"ResidualMLP({num_features}, width={width}, depth={depth})",
                           f" ({num_features}·{width} + {width} in the stem, {depth} × ({width}·{width} + {width}) "
                           f"in the blocks, {width} + 1 in the head)")


@checks.of("ResidualMLP", rule="all_trained")
def training_changes_every_layer(ResidualMLP, num_features=5, width=8, depth=2, seed=0):
    model = build(ResidualMLP, num_features, width, depth, what="ResidualMLP", seed=seed)
    layers = _residual_layers(model, num_features, width, depth)
    names = ["self.stem"] + [f"self.blocks[{i}]" for i in range(depth)] + ["self.head"]
    before = [_weights(layer)[0] for layer in layers]
    X = _inputs(64, num_features, seed)
    y = (X[:, :1] > 0).float()
    probe(train_module, model, X, y, steps=5, lr=0.5)
    unchanged = [name for name, layer, old in zip(names, layers, before)
                 if is_close(_weights(layer)[0], old, atol=0, rtol=0)]
    expect(not unchanged, f"after training with an optimizer over model.parameters(), {', '.join(unchanged)} "
           "still hold{} their starting weights: training never reaches {}.".format(
               "s" if len(unchanged) == 1 else "", "it" if len(unchanged) == 1 else "them"), "not_trained")


@checks.of("ResidualMLP", rule="same_computation")
def computes_what_the_given_network_computes(ResidualMLP, num_features=5, width=8, depth=2, num_samples=8, seed=0):
    model = build(ResidualMLP, num_features, width, depth, what="ResidualMLP", seed=seed)
    stem, *blocks, head = [_weights(layer) for layer in _residual_layers(model, num_features, width, depth)]
    X = _inputs(num_samples, num_features, seed + 1)
    out = as_tensor(model(X), "model(X)")
    expect(tuple(out.shape) == (num_samples, 1), f"model(X) has shape {shape_text(out.shape)}; expected "
           f"({num_samples}, 1), one probability per sample.", "wrong_shape")
    h = torch.relu(_affine(X, stem))
    plain = h
    for block in blocks:
        h = h + torch.relu(_affine(h, block))
        plain = torch.relu(_affine(plain, block))
    expected = torch.sigmoid(_affine(h, head))
    if is_close(out, torch.sigmoid(_affine(plain, head))):
        fail("ResidualMLP no longer adds each block's input to its output: it computes relu(block(x)) where the "
             "given network computed x + relu(block(x)).", "drops_residual")
    expect(is_close(out, expected), f"model(X) differs from what the given network computes with the same weights "
           f"by up to {biggest_gap(out, expected):.3g}.", "wrong_values")


# --- make_mlp -------------------------------------------------------------------------------
#
# Rules of make_mlp -> checks:
#   sequential         an nn.Sequential of layers, for a list or a tuple       -> returns_an_nn_Sequential
#   linear_layers      Linear(sizes[i], sizes[i+1]) with bias                  -> holds_Linear_layers_of_the_given_sizes
#   between_only       an activation between consecutive layers, none after  -> puts_an_activation_between_consecutive_layers_and_none_after_the_last
#   fresh_activations  activation() of the class given, a new one per gap     -> each_gap_gets_a_new_activation_of_the_given_class
#   runs_in_order      calling it runs every layer in order                   -> computes_the_layers_in_order,
#                                                                                instructor: matches_a_reference_mlp_with_the_same_weights
#   value_error        ValueError for fewer than two sizes                    -> raises_ValueError_for_fewer_than_two_sizes


def _mlp(make_mlp, sizes, **kwargs):
    try:
        result = make_mlp(sizes, **kwargs)
    except TypeError as exc:
        if "is not a Module subclass" in str(exc):
            fail(f"building the layers raised `{exc}`: `activation` is a class such as nn.ReLU, and nn.Sequential "
                 "holds layers, instances of such classes.", "activation_not_called",
                 fix="call activation() to make a layer for each gap")
        raise
    if type(result) in (list, tuple):
        fail(f"make_mlp returned a plain Python {type(result).__name__}, which registers nothing and has no "
             "forward.", "layers_in_plain_list", fix="return nn.Sequential(*layers)")
    if is_instance(result, nn.ModuleList):
        fail("make_mlp returned an nn.ModuleList, which has no forward: calling it fails.", "not_sequential")
    if not is_instance(result, nn.Sequential):
        fail(f"make_mlp should return an nn.Sequential; it returned {what_is(result)}.", "not_sequential")
    return result


@checks.of("make_mlp", rule="sequential")
def returns_an_nn_Sequential(make_mlp, sizes=(6, 5, 4, 3)):
    for form in (list(sizes), tuple(sizes)):
        _mlp(make_mlp, form)


@checks.of("make_mlp", rule="linear_layers")
def holds_Linear_layers_of_the_given_sizes(make_mlp, sizes=(6, 5, 4, 3)):
    for form in (list(sizes), tuple(sizes), [sizes[0], sizes[-1]]):
        facts = probe(children_facts, _mlp(make_mlp, form))
        linears = [entry["linear"] for entry in facts if entry["linear"] is not None]
        expected = [(form[i], form[i + 1]) for i in range(len(form) - 1)]
        found = [(n_in, n_out) for n_in, n_out, _ in linears]
        expect(found == expected,
               f"make_mlp({form!r}) holds Linear layers {found or 'none'}; expected {expected}: one layer from each "
               "size to the next.", "wrong_layer_size")
        no_bias = [i for i, (_, _, has_bias) in enumerate(linears) if not has_bias]
        expect(not no_bias, f"make_mlp({form!r}): Linear layer {no_bias[0] if no_bias else ''} has no bias, so it "
               "holds n_out parameters fewer than a Linear layer does by default.", "missing_bias")


@checks.of("make_mlp", rule="between_only")
def puts_an_activation_between_consecutive_layers_and_none_after_the_last(make_mlp, sizes=(6, 5, 4, 3)):
    facts = probe(children_facts, _mlp(make_mlp, list(sizes)))
    if not facts:
        fail(f"make_mlp({list(sizes)}) returned an empty nn.Sequential.", "wrong_layers")
    if facts[-1]["linear"] is None:
        fail(f"make_mlp({list(sizes)}) ends with {_short(facts[-1:])}, after the last Linear layer. The last "
             "layer's raw outputs are the network's result: an activation there (a ReLU clips every negative score "
             "to 0) changes what the network can express.", "activation_after_last")
    if facts[0]["linear"] is None:
        fail(f"make_mlp({list(sizes)}) starts with {_short(facts[:1])}; activations go only between layers.",
             "wrong_layers")
    for position, (before, after) in enumerate(zip(facts, facts[1:])):
        if before["linear"] is not None and after["linear"] is not None:
            fail(f"make_mlp({list(sizes)}) puts Linear layers {position} and {position + 1} next to each other with "
                 f"no activation between them ({_short(facts)}): two linear maps in a row collapse into one.",
                 "missing_activation")
        if before["linear"] is None and after["linear"] is None:
            fail(f"make_mlp({list(sizes)}) has two activations in a row at positions {position} and {position + 1}: "
                 f"{_short(facts)}.", "wrong_layers")


@checks.of("make_mlp", rule="fresh_activations")
def each_gap_gets_a_new_activation_of_the_given_class(make_mlp, sizes=(6, 5, 4, 3)):
    for activation in (None, nn.Tanh, nn.PReLU):
        network = _mlp(make_mlp, list(sizes)) if activation is None else _mlp(make_mlp, list(sizes), activation=activation)
        facts = probe(children_facts, network)
        between = [entry for entry in facts if entry["linear"] is None]
        wanted = nn.ReLU if activation is None else activation
        call = f"make_mlp({list(sizes)}" + ("" if activation is None else f", activation=nn.{activation.__name__}") + ")"
        expect(len(between) == len(sizes) - 2 and all(entry["type"] == _type_path(wanted) for entry in between),
               f"{call} puts [{_short(between)}] between its Linear layers; expected {len(sizes) - 2} × "
               f"{wanted.__name__}" + ("" if activation is None else ", the class it was given") + ".",
               "activation_ignored")
        shared = [i for i, entry in enumerate(facts) if entry["first"] != i]
        expect(not shared,
               f"{call} puts one and the same activation object in {len(between)} places: it was created once and "
               "reused, so every gap shares it (an activation with parameters, such as nn.PReLU, would share them "
               "too).", "shared_activation", fix="call activation() once per gap")
    # one learned slope per PReLU, on top of the Linear layers' weights and biases
    expected = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:])) + len(sizes) - 2
    found = parameter_total(probe(module_facts, network))
    expect(found == expected,
           f"make_mlp({list(sizes)}, activation=nn.PReLU) has {found} parameters; expected {expected}, with one "
           "learned slope in each of its PReLU layers.", "shared_activation")


@checks.of("make_mlp", rule="runs_in_order")
def computes_the_layers_in_order(make_mlp, sizes=(6, 5, 4, 3), num_samples=8, seed=0):
    probe(torch.random.manual_seed, seed)
    network = _mlp(make_mlp, list(sizes))
    X = _inputs(num_samples, sizes[0], seed)
    out = as_tensor(network(X), "make_mlp(sizes)(X)")
    expect(tuple(out.shape) == (num_samples, sizes[-1]),
           f"the network maps a batch of shape {shape_text(X.shape)} to {shape_text(out.shape)}; expected "
           f"({num_samples}, {sizes[-1]}).", "wrong_shape")
    # What the network computes must be what its own registered layers compute in order: a Sequential
    # subclass (or a patched forward) that skips the activations would otherwise look right by its layers.
    layers = list(network._modules.values())  # each registration, as the Sequential runs them
    expected = X
    for layer in layers:
        expected = as_tensor(layer(expected), "a layer's output").detach()
    if not is_close(out, expected):
        linear_only = X
        for layer in layers:
            if is_instance(layer, nn.Linear):
                linear_only = _affine(linear_only, _weights(layer))
        skipped = " It equals the Linear layers alone: the activations are skipped." if is_close(out, linear_only) else ""
        fail(f"make_mlp({list(sizes)})(X) differs by up to {biggest_gap(out, expected):.3g} from running X through "
             f"the network's own layers in order.{skipped} A plain nn.Sequential's forward applies every layer it "
             "holds, activations included.", "forward_skips_layers")


@checks.of("make_mlp", rule="value_error")
def raises_ValueError_for_fewer_than_two_sizes(make_mlp):
    for sizes in ([5], []):
        try:
            result = make_mlp(sizes)
        except ValueError:
            continue
        except Exception as exc:
            fail(f"make_mlp({sizes}) raised {getattr(exc, 'learner_type', type(exc).__name__)}: {exc}; the exercise "
                 "asks for ValueError.", "wrong_exception", fix="check `len(sizes) < 2` first and raise ValueError")
        fail(f"make_mlp({sizes}) returned {what_is(result)}: fewer than two sizes describe no layer.",
             "no_value_error")


# --- mlp_param_count ------------------------------------------------------------------------
#
# Rules of mlp_param_count -> checks:
#   the_count         torchinfo's total for make_mlp(sizes), a Python int  -> agrees_with_torchinfo_on_several_networks
#   without_building  counted with module building switched off, sizes
#                     too large to build included                         -> counts_without_building_the_model
#   value_error       ValueError for fewer than two sizes                 -> raises_ValueError_for_fewer_than_two_sizes_too


def _count(mlp_param_count, sizes) -> int:
    return as_int(mlp_param_count(list(sizes)), f"mlp_param_count({list(sizes)})")


@checks.of("mlp_param_count", rule="the_count")
def agrees_with_torchinfo_on_several_networks(mlp_param_count, sizes=(64, 32, 10)):
    from torchinfo import summary

    for case in (tuple(sizes), (5, 3, 1), (10, 1), (30, 16, 8, 1), (64, 128, 64, 10)):
        with seeded(0):  # torchinfo counts a stack of the Linear layers alone: activations hold no parameters
            stack = nn.Sequential(*(nn.Linear(n_in, n_out) for n_in, n_out in zip(case, case[1:])))
        expected = int(summary(stack, verbose=0).total_params)
        found = _count(mlp_param_count, case)
        outputs = sum(case[1:])
        if found == expected - outputs:
            fail(f"mlp_param_count({list(case)}) = {found}; torchinfo counts {expected}. The difference, {outputs}, "
                 "is the biases: each Linear layer has one per output.", "missing_bias")
        if found == expected - outputs + sum(case[:-1]):
            fail(f"mlp_param_count({list(case)}) = {found}; torchinfo counts {expected}. A layer has one bias per "
                 "output, not per input.", "wrong_count")
        expect(found == expected, f"mlp_param_count({list(case)}) = {found}; torchinfo counts {expected}.",
               "wrong_count")


_HUGE = (100_000, 100_000, 100_000, 10)


@checks.of("mlp_param_count", rule="without_building")
def counts_without_building_the_model(mlp_param_count, sizes=(64, 32, 10)):
    why = ("count from the sizes alone, without building layers. (A network of sizes "
           f"{list(_HUGE)} would need 80 GB of memory just to be counted.)")
    for case in (tuple(sizes), _HUGE):
        found = probe(call_without, module_building_tools, "mlp_param_count", why, "built_model", mlp_param_count,
                      list(case))
        found = as_int(found, f"mlp_param_count({list(case)})")
        expected = sum(a * b + b for a, b in zip(case[:-1], case[1:]))
        expect(found == expected, f"mlp_param_count({list(case)}) = {found}; expected {expected}.", "wrong_count")


@checks.of("mlp_param_count", rule="value_error")
def raises_ValueError_for_fewer_than_two_sizes_too(mlp_param_count):
    for sizes in ([7], []):
        try:
            result = mlp_param_count(sizes)
        except ValueError:
            continue
        except Exception as exc:
            fail(f"mlp_param_count({sizes}) raised {getattr(exc, 'learner_type', type(exc).__name__)}: {exc}; the "
                 "exercise asks for ValueError, as make_mlp raises.", "wrong_exception")
        fail(f"mlp_param_count({sizes}) returned {what_is(result)}: fewer than two sizes describe no network, and "
             "make_mlp refuses them.", "no_value_error")


# --- predict_straight_boundaries (predict, then run) ---------------------------------------------
#
# Rules of predict_straight_boundaries -> checks:
#   letters  a string of letters from a to d, each once, in order  -> answers_with_letters_in_order
#   right    the networks whose boundary is a straight line         -> instructor: names_the_straight_boundaries

CHOICES = "abcd"


@checks.of("predict_straight_boundaries", rule="letters")
def answers_with_letters_in_order(predict_straight_boundaries):
    if not is_callable(predict_straight_boundaries):
        fail("predict_straight_boundaries should be a function that returns your letters; it is "
             f"{what_is(predict_straight_boundaries)}.", "wrong_type")
    value = predict_straight_boundaries()
    expect(type(value) is str, f"predict_straight_boundaries() returned {what_is(value)}; expected a string of "
           "letters such as \"bd\".", "wrong_type")
    expect(all(letter in CHOICES for letter in value) and list(value) == sorted(set(value)),
           f"predict_straight_boundaries() returned {value!r}; expected letters from a to d, each at most once, in "
           "alphabetical order, such as \"bd\" (or \"\" for none).", "wrong_form")


# --- spiral_classifier (challenge) -----------------------------------------------------------
#
# Graded by outcome: the learner designs the network; the check builds it and trains it with the
# notebook's fixed recipe (autograder.recipes.train_spirals) in the learner's process, and measures it
# here on spiral points whose labels never leave the judge.
# Rules of spiral_classifier -> checks:
#   probabilities  (N, 2) points -> (N, 1) probabilities in [0, 1]     -> maps_points_to_probabilities
#   budget         at most SPIRAL_BUDGET parameters                    -> stays_within_the_budget
#   fresh_model    a new network on every call                         -> returns_a_new_network_on_every_call
#   untrained      nothing learnt before the call                      -> is_untrained_when_returned
#   seeded_start   torch.manual_seed before the call decides the start -> the_global_seed_decides_the_start
#   target         SPIRAL_TARGET on the notebook's new points          -> separates_the_spirals_after_training
#   other_spirals  the same on spirals of the grader's                 -> instructor: separates_spirals_it_never_saw

SPIRAL_BUDGET = 5000
SPIRAL_TARGET = 0.92
SPIRAL_POINTS = 400
UNTRAINED_AT_MOST = 0.75  # untrained networks get about half the spiral points right (at most 0.67 in 200 draws)


def _spiral_model(spiral_classifier, seed: int | None = None):
    if not is_callable(spiral_classifier) or (is_remote(spiral_classifier) and not is_class(spiral_classifier)
                                              and is_instance(spiral_classifier, nn.Module)):
        fail("spiral_classifier should be a function that returns a new network; it is "
             f"{what_is(spiral_classifier)}.", "wrong_type")
    if seed is not None:
        probe(torch.random.manual_seed, seed)
    return as_model(spiral_classifier(), "spiral_classifier()")


def _spiral_probabilities(out, num_points: int) -> torch.Tensor:
    out = as_tensor(out, "model(X)").detach()
    expect(tuple(out.shape) == (num_points, 1),
           f"the network maps {num_points} points to {shape_text(out.shape)}; expected ({num_points}, 1), one "
           "probability per point.", "wrong_shape")
    expect(bool(((out >= 0) & (out <= 1)).all()),
           f"the network's outputs reach {number(float(out.min()))} .. {number(float(out.max()))}; they should be "
           "probabilities in [0, 1], as train_spirals' nn.BCELoss needs.", "missing_sigmoid",
           fix="end the network with nn.Sigmoid()")
    return out


def _accuracy(probs: torch.Tensor, y: torch.Tensor) -> float:
    return float(((probs > 0.5).float() == y).float().mean())


def built_twice(factory) -> dict:
    """A probe: two calls of ``factory``; whether they gave the same object, and how many parameter tensors
    the two results share."""
    first, second = factory(), factory()
    mine = {id(p) for p in first.parameters()}
    return {"same": first is second, "shared": sum(id(p) in mine for p in second.parameters())}


def reset_copy(model):
    """A probe: a copy of ``model`` with every layer that can reset its parameters reset, as PyTorch
    initialises a new one (a fresh, untrained network of the same design), and how many layers were reset."""
    fresh = copy.deepcopy(model)
    reset = 0
    for module in fresh.modules():
        if callable(getattr(module, "reset_parameters", None)):
            module.reset_parameters()
            reset += 1
    return fresh, reset


def spiral_accuracy(spiral_classifier, train_seed: int, test_seed: int, model_seed: int) -> float:
    """Train the learner's design with train_spirals on one draw of the spirals; its accuracy on another."""
    model = _spiral_model(spiral_classifier, model_seed)
    X, y = make_spirals(SPIRAL_POINTS, seed=train_seed)
    X_test, y_test = make_spirals(SPIRAL_POINTS, seed=test_seed)
    _spiral_probabilities(model(X[:8]), 8)
    probe(torch.set_num_threads, 1)  # tiny networks train fastest on one thread
    probe(train_spirals, model, X, y)
    model.eval()
    return _accuracy(_spiral_probabilities(model(X_test), len(X_test)), y_test)


def expect_spiral_accuracy(accuracy: float, where: str) -> None:
    expect(accuracy >= SPIRAL_TARGET,
           f"trained with train_spirals, your design classifies {accuracy:.1%} of {where} right; the target is "
           f"{SPIRAL_TARGET:.0%}. A straight boundary gets about 60%.", "below_target")


@checks.of("spiral_classifier", rule="probabilities")
def maps_points_to_probabilities(spiral_classifier, seed=0):
    model = _spiral_model(spiral_classifier, seed)
    X, _ = make_spirals(16, seed=seed)
    _spiral_probabilities(model(X), len(X))


@checks.of("spiral_classifier", rule="budget")
def stays_within_the_budget(spiral_classifier, seed=0):
    count = parameter_total(probe(module_facts, _spiral_model(spiral_classifier, seed)))
    expect(count <= SPIRAL_BUDGET, f"spiral_classifier's network has {count:,} parameters; the budget is "
           f"{SPIRAL_BUDGET:,}.", "over_budget")
    expect(count > 0, "spiral_classifier's network has no parameters to train.", "not_registered")


@checks.of("spiral_classifier", rule="fresh_model")
def returns_a_new_network_on_every_call(spiral_classifier, seed=0):
    _spiral_model(spiral_classifier, seed)
    seen = probe(built_twice, spiral_classifier)
    expect(not seen["same"] and not seen["shared"],
           "two calls of spiral_classifier return " + ("the same network" if seen["same"] else
                                                       f"networks that share {seen['shared']} parameter tensors")
           + ": whatever one run trains, the next one starts from. Each call must build a new network.",
           "not_fresh")


@checks.of("spiral_classifier", rule="untrained")
def is_untrained_when_returned(spiral_classifier, seed=0):
    model = _spiral_model(spiral_classifier, seed)
    X, y = make_spirals(SPIRAL_POINTS, seed=seed)
    before = _accuracy(_spiral_probabilities(model(X), len(X)), y)
    fresh, reset = probe(reset_copy, model)
    untrained = _accuracy(_spiral_probabilities(fresh(X), len(X)), y)
    expect(before <= UNTRAINED_AT_MOST or (reset and before <= untrained + 0.1),
           f"before any training, the network spiral_classifier returned classifies {before:.0%} of spiral points "
           f"right; the same design with its layers freshly initialised gets {untrained:.0%}, about what a coin "
           "does. It was trained before it was returned; the exercise asks for a new, untrained one, which the "
           "check trains itself.", "already_trained")


@checks.of("spiral_classifier", rule="seeded_start")
def the_global_seed_decides_the_start(spiral_classifier, seed=0):
    X, _ = make_spirals(16, seed=seed)
    outputs = [_spiral_probabilities(_spiral_model(spiral_classifier, s)(X), len(X)) for s in (seed, seed, seed + 1)]
    expect(is_close(outputs[0], outputs[1], atol=0, rtol=0),
           f"two networks built right after torch.manual_seed({seed}) differ: their start does not come from "
           "PyTorch's global generator alone, so the check cannot choose it.", "not_deterministic")
    expect(not is_close(outputs[0], outputs[2], atol=0, rtol=0),
           f"networks built after torch.manual_seed({seed}) and torch.manual_seed({seed + 1}) start the same: the "
           "start ignores PyTorch's global generator (torch.manual_seed inside spiral_classifier, or weights set "
           "to fixed values?), so the graded tests cannot try other starting weights.", "seed_ignored")


@checks.of("spiral_classifier", rule="target")
def separates_the_spirals_after_training(spiral_classifier, seed=0):
    # the notebook trains on make_spirals(seed=0) and shows make_spirals(seed=1) as new points
    expect_spiral_accuracy(spiral_accuracy(spiral_classifier, train_seed=0, test_seed=1, model_seed=seed),
                           "the notebook's new spiral points")
