"""The checks of 03_nn_module beyond its cases (autograder/cases/03_nn_module.py, run by test_rules): the
solution passes every test cell as written, the hidden tests really vary their inputs, the messages say
what they must, and the checks keep working where PyTorch rewraps its own functions."""

import pytest

from autograder import cases
from autograder.runner import run_checks
from support import assert_accepted, assert_caught, solution_namespace

NB = "03_nn_module"


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


def test_the_missing_bias_message_gives_both_counts():
    result = assert_caught("SimpleModel", with_cell("SimpleModel", case("SimpleModel", "weights_and_bias").code),
                           "missing_bias")
    assert "5 parameters" in result.message and "expected 6" in result.message and "bias=False" in result.message


def test_a_module_built_for_five_features_only_is_told_its_shape():
    five_only = '''class ManualLogisticModule(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.W = nn.Parameter((torch.rand(5, 1) * 2 - 1) / math.sqrt(5))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.sigmoid(x @ self.W + self.b)
'''
    result = assert_caught("ManualLogisticModule", with_cell("ManualLogisticModule", five_only), "wrong_shape")
    assert "with 2 features self.W has shape (5, 1); expected (2, 1)" in result.message


def test_a_range_one_feature_too_wide_is_told_how_far_its_draws_reach():
    result = assert_caught("ManualLogisticModule",
                           with_cell("ManualLogisticModule", case("ManualLogisticModule", "uniform in ±1/sqrt(n + 1)").code),
                           "narrow_range")
    assert "±1/sqrt(2) = ±0.7071" in result.message and "stayed within" in result.message


def test_a_failing_first_check_does_not_hand_out_the_fix_in_its_message():
    result = assert_caught("ManualLogisticModule",
                           with_cell("ManualLogisticModule", case("ManualLogisticModule", "plain tensors").code),
                           "not_registered")
    assert "nn.Parameter(" not in result.message and result.fix == ""


def test_load_manual_weights_on_a_SimpleModel_without_sigmoid_blames_SimpleModel():
    broken = with_cell("SimpleModel", case("load_manual_weights", "SimpleModel without its sigmoid").cells["SimpleModel"])
    result = assert_caught("load_manual_weights", broken, "SimpleModel_broken")
    assert "because your `SimpleModel` fails its own checks" in result.message


def test_a_snapshot_that_follows_the_model_is_told_so():
    given = case("snapshot_parameters", "as given (detach)").code
    result = assert_caught("snapshot_parameters", with_cell("snapshot_parameters", given), "shares_memory")
    assert "moved with them" in result.message


def test_the_planted_bug_of_the_repair_is_the_one_the_notebook_gives():
    given = next(cell.source for cell in cases._source(NB).cells
                 if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "snapshot_parameters_as_given")
    planted = case("snapshot_parameters", "as given (detach)").code
    assert given.splitlines()[-1].strip() == planted.splitlines()[-1].strip()


def test_the_checks_still_name_torch_functions_after_torch_dynamo_is_imported(solution):
    import torch._dynamo  # noqa: F401  (rewraps torch.manual_seed, as an optimizer's first step does)

    assert_accepted("ManualLogisticModule", solution)
    assert_accepted("CircleClassifier", solution)


def test_the_hidden_circles_lie_in_the_stated_ranges_and_are_not_the_notebooks():
    import importlib

    hidden = importlib.import_module("autograder.checks.instructor.03_nn_module")
    for (cx, cy), radius, _ in hidden._HIDDEN_CIRCLES:
        assert -0.6 <= cx <= 0.6 and -0.6 <= cy <= 0.6 and 0.9 <= radius <= 1.4
        assert ((cx, cy), radius) != ((0.3, -0.2), 1.2)


def test_the_prediction_is_the_count_the_reveal_prints(solution):
    exec(compile(next(c.source for c in cases._source(NB).cells
                      if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "mixed_module"), "<mixed>", "exec"),
         solution)
    assert solution["count_parameters"](solution["Mixed"]()) == solution["predict_mixed_count"]()

