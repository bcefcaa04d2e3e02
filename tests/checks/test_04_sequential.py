"""The checks of 04_sequential beyond its cases (autograder/cases/04_sequential.py, run by test_rules): the
solution passes every test cell as written, the hidden tests really vary their inputs, the messages say
what they must, and nothing of a check is left behind in PyTorch."""

import importlib

import pytest
from torch import nn

from autograder import cases, registry
from autograder.runner import run_checks
from support import assert_caught, solution_namespace

NB = "04_sequential"


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def with_cell(exercise: str, code: str) -> dict:
    """The solution's namespace with the answer cell of ``exercise`` replaced by ``code``."""
    space = ns()
    exec(compile(code, f"<{exercise}>", "exec"), space)
    return space


def case(exercise: str, name: str):
    return next(c for c in cases.cases_of(NB) if c.exercise == exercise and (c.name == name or c.rule == name))


@pytest.fixture(scope="module")
def solution():
    return ns()


def test_a_model_that_ignores_hidden_passes_the_visible_test_and_fails_the_hidden_one():
    space = with_cell("TwoLayerModelNoSequential", case("TwoLayerModelNoSequential", "ignores hidden").code)
    assert all(r.passed for r in run_checks("TwoLayerModelNoSequential", space))
    result = assert_caught("TwoLayerModelNoSequential", space, "wrong_layer_size", instructor=True,
                           num_features=11, hidden=7, num_samples=13, seed=3)
    assert "expected 11 to 7" in result.message


def test_the_missing_bias_message_is_off_by_the_number_of_outputs():
    result = assert_caught("TwoLayerModelNoSequential",
                           with_cell("TwoLayerModelNoSequential", case("TwoLayerModelNoSequential", "all_registered").code),
                           "missing_bias")
    assert "19 parameters" in result.message and "expected 22" in result.message


def test_a_Sequential_subclass_whose_forward_skips_the_activations_is_told_so():
    result = assert_caught("make_mlp", with_cell("make_mlp", case("make_mlp", "a Sequential that skips its activations").code),
                           "forward_skips_layers")
    assert "activations are skipped" in result.message


def test_a_repeated_block_is_told_it_shares_its_weights():
    result = assert_caught("ResidualMLP", with_cell("ResidualMLP", case("ResidualMLP", "one block repeated").code),
                           "shared_block")
    assert "share" in result.message and "one block's weights" in result.message


def test_the_planted_bug_of_the_repair_is_the_one_the_notebook_gives():
    given = next(cell.source for cell in cases._source(NB).cells
                 if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "ResidualMLP_as_given")
    assert "self.blocks = [nn.Linear(in_features=width, out_features=width) for _ in range(depth)]" in given
    assert "self.blocks = [nn.Linear(width, width) for _ in range(depth)]" in case("ResidualMLP", "all_trained").code


def test_modules_can_be_built_again_after_the_check_that_forbids_it():
    assert_caught("mlp_param_count", with_cell("mlp_param_count", case("mlp_param_count", "without_building").code),
                  "built_model")
    assert nn.Linear(3, 2).weight.shape == (2, 3)


def test_a_network_trained_before_it_is_returned_is_told_so():
    result = assert_caught("spiral_classifier",
                           with_cell("spiral_classifier", case("spiral_classifier", "untrained").code),
                           "already_trained")
    assert "freshly initialised gets" in result.message


def test_no_public_check_module_keeps_a_reference_mlp():
    registry.notebooks()
    public = importlib.import_module("autograder.checks.04_sequential")
    assert not hasattr(public, "_reference_mlp")


def test_the_hidden_spirals_are_other_data_than_the_notebook_shows():
    hidden = importlib.import_module("autograder.checks.instructor.04_sequential")
    assert not set(hidden._HIDDEN_SPIRALS) & {0, 1, 5, 6}


def test_the_value_of_the_prediction_is_what_the_notebooks_four_networks_are():
    reveal = next(cell.source for cell in cases._source(NB).cells if cell.source.startswith("four = {"))
    space = {"nn": nn}
    exec(reveal.split("\nwith ")[0], space)  # the four networks, without training them
    straight = "".join(letter for letter, build in space["four"].items()
                       if {type(layer) for layer in build()[:-1]} == {nn.Linear})
    hidden = importlib.import_module("autograder.checks.instructor.04_sequential")
    assert hidden._STRAIGHT == straight == "ac"

