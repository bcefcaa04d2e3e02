"""The checks of 04_sequential: real mistakes are caught with the right
diagnosis, and correct answers written another way are accepted."""

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from support import assert_accepted, assert_caught, solution_namespace

NB = "04_sequential"


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def test_the_solutions_pass_with_default_and_fresh_inputs():
    namespace = ns()
    for exercise in ("TwoLayerModelNoSequential", "TwoLayerModel", "make_mlp", "mlp_param_count"):
        assert_accepted(exercise, namespace)
    fresh = dict(num_features=11, hidden=7, num_samples=13, seed=3)
    assert_accepted("TwoLayerModelNoSequential", namespace, **fresh)
    assert_accepted("TwoLayerModel", namespace, **fresh)
    assert_accepted("make_mlp", namespace, sizes=(13, 9, 9, 4, 2), num_samples=11, seed=7)
    assert_accepted("mlp_param_count", namespace, sizes=(13, 9, 9, 4, 2))


def test_the_solutions_pass_the_hidden_tests_of_the_notebook_with_the_instructor_checks():
    namespace = ns()
    fresh = dict(num_features=11, hidden=7, num_samples=13, seed=3)
    assert_accepted("TwoLayerModelNoSequential", namespace, instructor=True, **fresh)
    assert_accepted("TwoLayerModel", namespace, instructor=True, **fresh)
    assert_accepted("make_mlp", namespace, instructor=True, sizes=(13, 9, 9, 4, 2), num_samples=11, seed=7)
    assert_accepted("mlp_param_count", namespace, instructor=True, sizes=(13, 9, 9, 4, 2))
    assert_accepted("spiral_classifier", namespace, instructor=True, seed=5)


def test_no_public_check_module_keeps_a_reference_mlp():
    from autograder import registry
    import importlib
    registry.notebooks()
    public = importlib.import_module("autograder.checks.04_sequential")
    assert not hasattr(public, "_reference_mlp")


# --- TwoLayerModelNoSequential ---


class FunctionalActivations(nn.Module):
    def __init__(self, num_features, hidden=3):
        super().__init__()
        self.linear1 = nn.Linear(num_features, hidden)
        self.linear2 = nn.Linear(hidden, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear2(F.relu(self.linear1(x))))


def two_layer(forward=None, bias1=True, bias2=True):
    class Model(nn.Module):
        def __init__(self, num_features, hidden=3):
            super().__init__()
            self.linear1 = nn.Linear(num_features, hidden, bias=bias1)
            self.relu = nn.ReLU()
            self.linear2 = nn.Linear(hidden, 1, bias=bias2)
            self.sigmoid = nn.Sigmoid()

        def forward(self, x):
            if forward is not None:
                return forward(self, x)
            return self.sigmoid(self.linear2(self.relu(self.linear1(x))))

    return Model


class LayersInAList(nn.Module):
    def __init__(self, num_features, hidden=3):
        super().__init__()
        self.layers = [nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid()]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def test_TwoLayerModelNoSequential_with_F_relu_and_torch_sigmoid_is_accepted():
    assert_accepted("TwoLayerModelNoSequential", ns(TwoLayerModelNoSequential=FunctionalActivations))


@pytest.mark.parametrize("wrong, code", [
    (two_layer(bias1=False), "missing_bias"),
    (two_layer(bias2=False), "missing_bias"),
    (LayersInAList, "layers_in_plain_list"),
    (two_layer(lambda self, x: self.linear2(self.relu(self.linear1(x)))), "missing_sigmoid"),
    (two_layer(lambda self, x: self.sigmoid(self.linear2(self.linear1(x)))), "missing_activation"),
    (two_layer(lambda self, x: self.sigmoid(self.sigmoid(self.linear2(self.relu(self.linear1(x)))))),
     "double_sigmoid"),
    (two_layer(lambda self, x: self.sigmoid(self.linear2(self.relu(self.linear1(x)))).squeeze(1)),
     "broadcast_shape"),
])
def test_TwoLayerModelNoSequential_mistakes_are_diagnosed(wrong, code):
    assert_caught("TwoLayerModelNoSequential", ns(TwoLayerModelNoSequential=wrong), code)


class WrongHiddenSize(nn.Module):
    def __init__(self, num_features, hidden=3):
        super().__init__()
        self.linear1 = nn.Linear(num_features, 3)       # ignores hidden
        self.linear2 = nn.Linear(3, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear2(torch.relu(self.linear1(x))))


class Unnamed(FunctionalActivations):
    def __init__(self, num_features, hidden=3):
        nn.Module.__init__(self)
        self.first = nn.Linear(num_features, hidden)
        self.second = nn.Linear(hidden, 1)


@pytest.mark.parametrize("wrong, code, inputs", [
    (WrongHiddenSize, "wrong_layer_size", dict(num_features=11, hidden=7)),
    (Unnamed, "missing_attribute", {}),
    (two_layer(lambda self, x: self.sigmoid(self.linear2(self.relu(self.linear1(x)))).detach()), "detached", {}),
    (two_layer(lambda self, x: self.sigmoid(self.linear2(torch.sigmoid(self.linear1(x))))), "wrong_activation", {}),
])
def test_TwoLayerModelNoSequential_each_clause_has_its_planted_mistake(wrong, code, inputs):
    assert_caught("TwoLayerModelNoSequential", ns(TwoLayerModelNoSequential=wrong), code, **inputs)


def test_the_missing_bias_message_is_off_by_the_number_of_outputs():
    result = assert_caught("TwoLayerModelNoSequential", ns(TwoLayerModelNoSequential=two_layer(bias1=False)),
                           "missing_bias")
    assert "19 parameters" in result.message and "expected 22" in result.message


# --- TwoLayerModel ---


class OrderedDictModel(nn.Module):
    def __init__(self, num_features, hidden=3):
        super().__init__()
        self.network = nn.Sequential(OrderedDict([
            ("hidden", nn.Linear(num_features, hidden)),
            ("relu", nn.ReLU()),
            ("output", nn.Linear(hidden, 1)),
            ("sigmoid", nn.Sigmoid()),
        ]))

    def forward(self, x):
        return self.network(x)


def sequential_model(*make_layers, forward=None):
    class Model(nn.Module):
        def __init__(self, num_features, hidden=3):
            super().__init__()
            self.network = nn.Sequential(*(make(num_features, hidden) for make in make_layers))

        def forward(self, x):
            return forward(self, x) if forward else self.network(x)

    return Model


def hidden_layer(nf, h):
    return nn.Linear(nf, h)


def output_layer(nf, h):
    return nn.Linear(h, 1)


def relu(nf, h):
    return nn.ReLU()


def sigmoid(nf, h):
    return nn.Sigmoid()


class PlainListNetwork(nn.Module):
    def __init__(self, num_features, hidden=3):
        super().__init__()
        self.network = [nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid()]

    def forward(self, x):
        for layer in self.network:
            x = layer(x)
        return x


class ModuleListNetwork(PlainListNetwork):
    def __init__(self, num_features, hidden=3):
        nn.Module.__init__(self)
        self.network = nn.ModuleList([nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid()])


def test_TwoLayerModel_with_an_OrderedDict_Sequential_is_accepted():
    assert_accepted("TwoLayerModel", ns(TwoLayerModel=OrderedDictModel))


@pytest.mark.parametrize("wrong, code", [
    (PlainListNetwork, "layers_in_plain_list"),
    (ModuleListNetwork, "not_sequential"),
    (sequential_model(hidden_layer, relu, output_layer,
                      forward=lambda self, x: torch.sigmoid(self.network(x))), "missing_sigmoid"),
    (sequential_model(hidden_layer, sigmoid, output_layer, sigmoid), "wrong_layers"),
    (sequential_model(hidden_layer, relu, output_layer, sigmoid,
                      forward=lambda self, x: torch.sigmoid(self.network(x))), "double_sigmoid"),
    (sequential_model(lambda nf, h: nn.Linear(nf, h, bias=False), relu, output_layer, sigmoid), "missing_bias"),
])
def test_TwoLayerModel_mistakes_are_diagnosed(wrong, code):
    assert_caught("TwoLayerModel", ns(TwoLayerModel=wrong), code)


def test_TwoLayerModel_whose_forward_bypasses_the_relu_of_its_network_is_caught():
    skipping = sequential_model(hidden_layer, relu, output_layer, sigmoid,
                                forward=lambda self, x: self.network[3](self.network[2](self.network[0](x))))
    assert_caught("TwoLayerModel", ns(TwoLayerModel=skipping), "missing_activation")


# --- make_mlp ---


def mlp_ordered_dict(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    named = OrderedDict()
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        named[f"linear{i}"] = nn.Linear(n_in, n_out)
        named[f"act{i}"] = activation()
    named.popitem()
    return nn.Sequential(named)


def mlp_shared_activation(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    act = activation()
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), act]
    return nn.Sequential(*layers[:-1])


def mlp_activation_after_last(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation()]
    return nn.Sequential(*layers)


def mlp_fixed_relu(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def mlp_activation_not_called(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation]
    return nn.Sequential(*layers[:-1])


def mlp_list(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation()]
    return layers[:-1]


def mlp_no_check(sizes, activation=nn.ReLU):
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation()]
    return nn.Sequential(*layers[:-1])


def mlp_without_activations(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    return nn.Sequential(*(nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes, sizes[1:])))


class SkipsActivations(nn.Sequential):
    """Looks right by its layers, but its forward runs only the Linear ones."""

    def forward(self, x):
        for layer in self:
            if isinstance(layer, nn.Linear):
                x = layer(x)
        return x


def mlp_subclass_skipping_activations(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation()]
    return SkipsActivations(*layers[:-1])


def mlp_recursive(sizes, activation=nn.ReLU):
    """Another correct form: built by recursion, with add_module."""
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    network = nn.Sequential() if len(sizes) == 2 else mlp_recursive(sizes[:-1], activation)
    if len(sizes) > 2:
        network.add_module(f"act{len(sizes) - 3}", activation())
    network.add_module(f"linear{len(sizes) - 2}", nn.Linear(sizes[-2], sizes[-1]))
    return network


def test_make_mlp_with_an_OrderedDict_is_accepted():
    assert_accepted("make_mlp", ns(make_mlp=mlp_ordered_dict))


def test_make_mlp_built_by_recursion_is_accepted_by_the_hidden_tests_too():
    assert_accepted("make_mlp", ns(make_mlp=mlp_recursive), instructor=True, sizes=(13, 9, 9, 4, 2),
                    num_samples=11, seed=7)


def test_a_Sequential_subclass_whose_forward_skips_the_activations_is_caught():
    result = assert_caught("make_mlp", ns(make_mlp=mlp_subclass_skipping_activations), "forward_skips_layers")
    assert "activations are skipped" in result.message


@pytest.mark.parametrize("wrong, code", [
    (mlp_shared_activation, "shared_activation"),
    (mlp_activation_after_last, "activation_after_last"),
    (mlp_fixed_relu, "activation_ignored"),
    (mlp_activation_not_called, "activation_not_called"),
    (mlp_list, "layers_in_plain_list"),
    (mlp_no_check, "no_value_error"),
    (mlp_without_activations, "missing_activation"),
])
def test_make_mlp_mistakes_are_diagnosed(wrong, code):
    assert_caught("make_mlp", ns(make_mlp=wrong), code)


# --- mlp_param_count ---


def count_with_a_loop(sizes):
    total = 0
    for i in range(1, len(sizes)):
        total += sizes[i - 1] * sizes[i] + sizes[i]
    return total


def count_without_biases(sizes):
    return sum(a * b for a, b in zip(sizes, sizes[1:]))


def count_biases_per_input(sizes):
    return sum(a * b + a for a, b in zip(sizes, sizes[1:]))


def count_by_building(sizes):
    return sum(p.numel() for p in ns()["make_mlp"](sizes).parameters())


def test_mlp_param_count_with_a_loop_is_accepted():
    assert_accepted("mlp_param_count", ns(mlp_param_count=count_with_a_loop))


@pytest.mark.parametrize("wrong, code", [
    (count_without_biases, "missing_bias"),
    (count_biases_per_input, "wrong_count"),
    (count_by_building, "built_model"),
])
def test_mlp_param_count_mistakes_are_diagnosed(wrong, code):
    assert_caught("mlp_param_count", ns(mlp_param_count=wrong), code)


def test_modules_can_be_built_again_after_the_check_that_forbids_it():
    assert_caught("mlp_param_count", ns(mlp_param_count=count_by_building), "built_model")
    assert nn.Linear(3, 2).weight.shape == (2, 3)


# --- spiral_classifier (challenge) ---


class TanhNet(nn.Module):
    """Another design, written as a class: wider, tanh, no make_mlp."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 48), nn.Tanh(), nn.Linear(48, 48), nn.Tanh(), nn.Linear(48, 1))

    def forward(self, x):
        return torch.sigmoid(self.body(x))


def test_another_design_reaching_the_target_is_accepted_by_the_hidden_tests_too():
    assert_accepted("spiral_classifier", ns(spiral_classifier=TanhNet), instructor=True, seed=5)


SHARED = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())


@pytest.mark.parametrize("wrong, code", [
    (lambda: nn.Sequential(nn.Linear(2, 1), nn.Sigmoid()), "below_target"),                 # a straight boundary
    (lambda: nn.Sequential(nn.Linear(2, 80), nn.ReLU(), nn.Linear(80, 80), nn.ReLU(), nn.Linear(80, 1),
                           nn.Sigmoid()), "over_budget"),                                     # 6,801 parameters
    (lambda: nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1)), "missing_sigmoid"),
    (lambda: SHARED, "not_fresh"),
    (lambda: TanhNet, "wrong_type"),
    (lambda: nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2), nn.Sigmoid()), "wrong_shape"),
])
def test_spiral_classifier_mistakes_are_diagnosed(wrong, code):
    assert_caught("spiral_classifier", ns(spiral_classifier=wrong), code)


def test_the_hidden_spirals_are_other_data_than_the_notebook_shows():
    from autograder.checks.instructor import __path__  # noqa: F401  (the instructor checks are installed here)
    import importlib
    hidden = importlib.import_module("autograder.checks.instructor.04_sequential")
    assert not set(hidden._HIDDEN_SPIRALS) & {0, 1, 5, 6}


def mlp_without_biases(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out, bias=False), activation()]
    return nn.Sequential(*layers[:-1])


def mlp_sizes_reversed(sizes, activation=nn.ReLU):
    return mlp_ordered_dict(list(reversed(sizes)), activation)


@pytest.mark.parametrize("wrong, code", [
    (mlp_without_biases, "missing_bias"),
    (mlp_sizes_reversed, "wrong_layer_size"),
])
def test_make_mlp_layer_clause_mistakes_are_diagnosed(wrong, code):
    assert_caught("make_mlp", ns(make_mlp=wrong), code)


def test_a_parameter_count_returned_as_a_float_is_caught():
    assert_caught("mlp_param_count", ns(mlp_param_count=lambda sizes: float(count_with_a_loop(sizes))), "wrong_type")
