"""Checking a learner's ``nn.Module`` from the judge's side (see :mod:`autograder.learner`).

A check holds the learner's model as a :class:`~autograder.learner.Remote`: calling it gives its output as
data, reading ``model.linear.weight`` gives a copy of that parameter (with its ``requires_grad`` and its
``.grad``). What needs the model itself (its registered parameters, the layers it hides in plain
containers, where a backward pass leaves gradients) is read by the probes below, which run next to the
model and report plain data. They report only shapes, names and flags: no probe here hands back a
model's parameter values (that would be the answer of 03's ``snapshot_parameters``).
"""

from __future__ import annotations

import torch
from torch import nn

from autograder.checks._support import describe
from autograder.learner import is_class, is_instance, is_remote, is_subclass, probe, type_name
from autograder.results import fail

# --- probes: they run where the learner's model lives ------------------------------------------


def module_facts(model) -> dict:
    """A probe: what ``model`` holds. Its parameters (name, shape, requires_grad), the attributes that hold
    layers in a plain list, tuple or dict (name, kind), and its Linear layers (path, in, out, has a bias)."""
    from autograder.checks._support import plain_containers

    parameters = [(name, tuple(int(d) for d in p.shape), bool(p.requires_grad))
                  for name, p in model.named_parameters()]
    plain = [(name, type(vars(model)[name]).__name__) for name in plain_containers(model)]
    linears = [(name, int(m.in_features), int(m.out_features), m.bias is not None)
               for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return {"parameters": parameters, "plain": plain, "linears": linears}


def gradients_from_output(model, X):
    """A probe: ``model(X)``, and the names of the parameters that hold a gradient after a backward pass
    from the output's sum (none when the output is not in the graph)."""
    out = model(X)
    if isinstance(out, torch.Tensor) and out.requires_grad:
        with torch.enable_grad():
            out.sum().backward()
    return out, [name for name, p in model.named_parameters() if p.grad is not None]


# --- the judge's side ------------------------------------------------------------------------------


def what_is(value) -> str:
    """``describe`` for values of both sides: a learner's object is named by its class."""
    if is_remote(value):
        return f"a {type_name(value).rsplit('.', 1)[-1]}"
    if value is None or type(value) in (bool, int, float) or (type(value) is str and len(value) < 40):
        return repr(value)
    return describe(value)


def attribute(obj, name: str):
    """``obj.name``, or None when it has no such attribute."""
    try:
        return getattr(obj, name)
    except AttributeError:
        return None


def build(cls, *args, what: str, seed: int | None = None, **kwargs):
    """The learner's module ``cls(*args, **kwargs)``, built in the learner's process (right after
    ``torch.manual_seed(seed)`` there, when a seed is given); the mistakes that stop it from building
    are explained."""
    if not is_class(cls):
        fail(f"`{what}` should be a class (an nn.Module subclass), but it is {what_is(cls)}.", "not_a_class")
    if not is_subclass(cls, nn.Module):
        fail(f"`{what}` should subclass nn.Module: it is a class of its own, so PyTorch registers nothing in it.",
             "not_a_module", fix=f"class {what}(nn.Module):")
    if seed is not None:
        # torch.random's own name: importing torch._dynamo (an optimizer's first step does) rewraps
        # torch.manual_seed, and the rewrapped function can no longer be named across to the learner
        probe(torch.random.manual_seed, seed)
    try:
        return cls(*args, **kwargs)
    except AttributeError as exc:
        if "before Module.__init__() call" in str(exc):
            fail(f"`{what}.__init__` assigns a layer or parameter before `super().__init__()` ran: nn.Module sets "
                 "up the registries that attribute assignment fills in its own __init__.", "missing_super_init",
                 fix="make `super().__init__()` the first line of __init__")
        raise


def parameter_total(facts: dict) -> int:
    total = 0
    for _, shape, _ in facts["parameters"]:
        count = 1
        for d in shape:
            count *= d
        total += count
    return total


def expect_parameter_count(facts: dict, expected: int, what: str, breakdown: str = "") -> None:
    """Fail unless the module described by ``facts`` (:func:`module_facts`) has ``expected`` parameters,
    naming the likely cause when it can be told. ``breakdown`` follows the expected number."""
    found = parameter_total(facts)
    if found == expected:
        return
    no_bias = [out for _, _, out, has_bias in facts["linears"] if not has_bias]
    if facts["plain"] and found < expected:
        name, kind = facts["plain"][0]
        fail(f"{what} has {found} parameters; expected {expected}{breakdown}. The layers in `self.{name}` sit in a "
             f"plain Python {kind}, so nn.Module never registers them: parameters() does not see them, and no "
             "optimizer would train them.", "layers_in_plain_list",
             fix="hold them in nn.ModuleList (or nn.Sequential, or nn.ModuleDict)")
    if no_bias and found == expected - sum(no_bias):
        fail(f"{what} has {found} parameters; expected {expected}{breakdown}. A Linear layer has no bias: is "
             "`bias=False` set? A bias adds one parameter per output of its layer.", "missing_bias")
    if found == 0:
        fail(f"{what} has no parameters; expected {expected}{breakdown}. Nothing is registered: layers and "
             "parameters count only when they are assigned as attributes of self in __init__.", "not_registered")
    fail(f"{what} has {found} parameters; expected {expected}{breakdown}.", "wrong_parameter_count")


def as_model(value, produced_by: str):
    """``value`` if it is a learner's nn.Module (not a class, not data); fails otherwise."""
    if is_remote(value) and is_class(value):
        fail(f"{produced_by} returned a class; return an instance of it (call it: Model()).", "wrong_type")
    if not (is_remote(value) and is_instance(value, nn.Module)):
        fail(f"{produced_by} should return an nn.Module; it returned {what_is(value)}.", "wrong_type")
    return value
