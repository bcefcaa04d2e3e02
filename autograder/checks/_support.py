"""Small tools the check modules share: type and shape tests that explain themselves.

Every helper here either returns a plain Python value or fails the check with
a message that says what was expected, what was found and, where it is
clear, why. Values from the learner are compared only after their exact type
is known, so an object that claims to equal everything gets nowhere.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import torch
from torch import nn

from autograder.results import expect, fail


def describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {type(value).__name__} of shape {shape_text(value.shape)} and dtype {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} item{'s' if len(value) != 1 else ''}"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


def shape_text(shape) -> str:
    dims = tuple(int(d) for d in shape)
    return f"({dims[0]},)" if len(dims) == 1 else str(dims)


def what_it_is(value) -> str:
    """What a value is, for a message ("an int", "a tuple of 3 items", "a Sequential", "a tensor of shape
    (2,) and dtype float32"); an object of the learner's process by its class."""
    from autograder.learner import is_remote, type_name

    if is_remote(value):
        name = type_name(value).rsplit(".", 1)[-1]
    elif isinstance(value, torch.Tensor):
        return f"a tensor of shape {shape_text(value.shape)} and dtype {str(value.dtype).replace('torch.', '')}"
    elif isinstance(value, (list, tuple, dict)):
        count = len(value)
        return f"a {type(value).__name__} of {count} item{'s' if count != 1 else ''}"
    elif value is None:
        return "None"
    else:
        name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def as_tensor(value: Any, what: str) -> torch.Tensor:
    """``value`` itself if it is a plain tensor (or a Parameter); fails otherwise."""
    if type(value) not in (torch.Tensor, nn.Parameter):
        fail(f"{what} should be a tensor, but it is {describe(value)}.", "not_a_tensor")
    return value


def as_pair(value: Any, what: str) -> tuple[Any, Any]:
    if type(value) not in (tuple, list) or len(value) != 2:
        fail(f"{what} should return a pair, like `return W, b`; it returned {describe(value)}.", "wrong_return")
    return value[0], value[1]


def as_int(value: Any, what: str) -> int:
    if type(value) is not int:
        hint = " Call .item() or int(...) to turn a one-element tensor into a Python number." if isinstance(value, torch.Tensor) else ""
        fail(f"{what} should be a Python int, but it is {describe(value)}.{hint}", "wrong_type")
    return value


def as_float(value: Any, what: str) -> float:
    if type(value) is not float:
        hint = " Use loss.item(): a stored tensor keeps its whole graph alive." if isinstance(value, torch.Tensor) else ""
        fail(f"{what} should be a Python float, but it is {describe(value)}.{hint}", "wrong_type")
    return value


def as_mean_loss(value: Any, what: str, per_sample_shape: tuple[int, ...]) -> torch.Tensor:
    """``value`` if it is a 0-dim tensor; a loss left with one value per sample fails as not reduced."""
    name = what.split("(")[0]
    loss = as_tensor(value, what)
    if loss.dim() != 0:
        if tuple(loss.shape) == tuple(per_sample_shape):
            fail(f"{name} returned one loss per sample, shape {shape_text(loss.shape)}: take the mean to get a "
                 "single number.", "not_reduced")
        fail(f"{name} returned {describe(loss)}; expected a 0-dim tensor (a single number).", "wrong_shape")
    return loss


def expect_shape(tensor: torch.Tensor, expected: tuple[int, ...], what: str, hint: str = "", code: str = "wrong_shape") -> None:
    found = tuple(tensor.shape)
    expect(found == tuple(expected),
           f"{what} has shape {shape_text(found)}; expected {shape_text(expected)}." + (f" {hint}" if hint else ""), code)


def expect_dtype(tensor: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    expect(tensor.dtype == dtype,
           f"{what} has dtype {str(tensor.dtype).replace('torch.', '')}; expected {str(dtype).replace('torch.', '')}.",
           "wrong_dtype")


def is_close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-5) -> bool:
    """A real bool: same shape and every element within tolerance (NaN never matches)."""
    actual = torch.as_tensor(actual).detach().to(torch.float64)
    expected = torch.as_tensor(expected).detach().to(torch.float64)
    if actual.shape != expected.shape:
        return False
    return bool(torch.allclose(actual, expected, atol=atol, rtol=rtol))


def biggest_gap(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.detach().double() - expected.detach().double()).abs().max())


def is_finite(value: torch.Tensor) -> bool:
    return bool(torch.isfinite(value.detach()).all())


def number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.6g}"


def instantiate(cls: Any, *args: Any, what: str, **kwargs: Any) -> nn.Module:
    """Build the learner's module, and explain the mistakes that stop it from building."""
    if not isinstance(cls, type):
        fail(f"`{what}` should be a class (an nn.Module subclass), but it is {describe(cls)}.", "not_a_class")
    if not issubclass(cls, nn.Module):
        fail(f"`{what}` should subclass nn.Module: write `class {what}(nn.Module):`.", "not_a_module")
    try:
        model = cls(*args, **kwargs)
    except AttributeError as exc:
        if "before Module.__init__() call" in str(exc):
            fail(f"`{what}.__init__` assigns a layer or parameter before calling `super().__init__()`: "
                 "nn.Module must set up its registries first, so make `super().__init__()` the first line.",
                 "missing_super_init")
        raise
    return model


def parameter_count(model: nn.Module) -> int:
    """Every number in every parameter, frozen ones included. (No trainable-only switch: with one,
    this would be an answer to 03's count_parameters that the student pack hands out.)"""
    return sum(tensor.numel() for tensor in model.parameters())


def plain_containers(model: nn.Module) -> list[str]:
    """Attributes of ``model`` that hold layers in a plain list, tuple or dict, where nn.Module cannot see them."""
    found = []
    for name, value in vars(model).items():
        if isinstance(value, (list, tuple)) and any(isinstance(v, nn.Module) for v in value):
            found.append(name)
        elif (type(value) is dict and not name.startswith("_")
              and any(isinstance(v, nn.Module) for v in value.values())):
            found.append(name)
    return found


def explain_parameter_count(model: nn.Module, expected: int, found: int) -> tuple[str, str]:
    """A hint and a diagnosis code for a module whose parameter count is not ``expected``."""
    hidden_away = plain_containers(model)
    if hidden_away and found < expected:
        kind = type(vars(model)[hidden_away[0]]).__name__
        return (f" The layers in `self.{hidden_away[0]}` sit in a plain Python {kind}, so nn.Module never registers "
                "them: parameters() does not see them, and no optimizer would train them. Hold them in "
                "nn.ModuleList (or nn.Sequential, or nn.ModuleDict) instead.", "layers_in_plain_list")
    no_bias = [m for m in model.modules() if isinstance(m, nn.Linear) and m.bias is None]
    if no_bias and found == expected - sum(m.out_features for m in no_bias):
        return (" A Linear layer has no bias: is `bias=False` set? A bias adds one parameter per output of its layer.",
                "missing_bias")
    if found == 0:
        return (" Nothing is registered: assign layers as attributes of self in __init__.", "not_registered")
    return "", "wrong_parameter_count"


def expect_parameter_count(model: nn.Module, expected: int, what: str, breakdown: str = "") -> None:
    """Fail unless ``model`` has ``expected`` parameters, naming the likely cause when it can be told.
    ``breakdown`` follows the expected number in the message, to show where it comes from."""
    found = parameter_count(model)
    hint, code = explain_parameter_count(model, expected, found)
    expect(found == expected, f"{what} has {found} parameters; expected {expected}{breakdown}.{hint}", code)


def failure_of(exercise: str, **objects: Any):
    """The first diagnosis that ``exercise``'s public checks give for the learner's ``objects``
    (a CheckFailure), or None when they pass. A check of one exercise calls this to name another
    exercise it relies on as the likely cause of its own failure ("because your `evaluate` ...")."""
    from autograder import registry
    from autograder.results import CheckFailure

    for check in registry.checks_of(exercise):
        if check.instructor or any(name not in objects for name in check.needs):
            continue
        try:
            check.func(**{name: objects[name] for name in check.needs})
        except CheckFailure as failure:
            return failure
        except NotImplementedError:
            raise
        except Exception as exc:  # the other exercise's code raised: that is its diagnosis
            return CheckFailure(f"raises {type(exc).__name__}: {exc}", "raised")
    return None


def blame(exercise: str, what: str, other: str, failure, code: str | None = None) -> None:
    """Fail ``exercise``'s check, naming the exercise ``other`` that it relies on as the cause.
    ``code`` replaces the diagnosis ``<other>_broken`` where the mistake itself has a name
    (gradients that accumulate, say)."""
    fail(f"{what} because your `{other}` fails its own checks: {failure.message} (Fix `{other}` first; "
         f"`{exercise}` relies on it.)", code or f"{other}_broken")


def uniform_distance(values: torch.Tensor, low: float, high: float) -> float:
    """Kolmogorov-Smirnov distance between the values and the uniform distribution on [low, high]:
    the largest gap between their empirical CDF and the straight line the uniform CDF draws."""
    v = values.detach().double().flatten().sort().values
    n = len(v)
    cdf = ((v - low) / (high - low)).clamp(0, 1)
    ranks = torch.arange(1, n + 1, dtype=torch.float64) / n
    return float(torch.maximum(ranks - cdf, cdf - (ranks - 1 / n)).abs().max())


@contextlib.contextmanager
def data_sealed(func: Any, exercise: str):
    """While ``func`` runs, the course's data sets cannot be loaded: a challenge trains on the samples the
    check hands over, and the held-out ones stay unseen. Fails the check when ``func`` tried anyway."""
    import autograder.data as data

    tried = []

    def sealed(*args, **kwargs):
        tried.append(True)
        raise RuntimeError(f"{exercise} may only use the data it is given; the check keeps the rest held out")

    owners = [(data, name) for name in ("load_digits", "load_breast_cancer")]
    try:
        import sklearn.datasets
        owners += [(sklearn.datasets, name) for name in ("load_digits", "load_breast_cancer")]
    except ImportError:  # pragma: no cover - scikit-learn ships with the course
        pass
    learner_globals = getattr(func, "__globals__", None)
    if isinstance(learner_globals, dict):
        owners += [(learner_globals, name) for name in ("load_digits", "load_breast_cancer") if name in learner_globals]
    saved = [(owner, name, owner[name] if isinstance(owner, dict) else getattr(owner, name)) for owner, name in owners]
    for owner, name, _ in saved:
        owner.__setitem__(name, sealed) if isinstance(owner, dict) else setattr(owner, name, sealed)
    try:
        yield
    except Exception:
        if tried:
            fail(f"{exercise} tried to load a data set itself. Train only on the samples it receives: the check "
                 "measures the result on samples it keeps back.", "loads_other_data")
        raise
    finally:
        for owner, name, value in saved:
            owner.__setitem__(name, value) if isinstance(owner, dict) else setattr(owner, name, value)
    expect(not tried, f"{exercise} tried to load a data set itself. Train only on the samples it receives: the "
           "check measures the result on samples it keeps back.", "loads_other_data")


@contextlib.contextmanager
def one_cpu_core():
    """PyTorch limited to one thread for the duration; ``seconds()`` of the block is the CPU time it used,
    which other programs on a busy machine do not inflate."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.process_time()
    clock = {"seconds": lambda: time.process_time() - started}
    try:
        yield clock
    finally:
        torch.set_num_threads(threads)
