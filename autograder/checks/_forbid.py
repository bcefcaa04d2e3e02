"""Switch library functions off while a learner's function runs.

Some exercises ask the learner to write by hand what PyTorch already offers
(cross-entropy, a gradient). A check shows that the hand-written version does
the job by running it with the ready-made tools out of reach::

    with unavailable("softmax_cross_entropy", CROSS_ENTROPY_TOOLS, why="...", code="used_builtin"):
        loss = softmax_cross_entropy(logits, targets)

While a notebook is graded the checks run outside the learner's process, so the switch happens
where the learner's code runs, through the probe :func:`call_without`::

    loss = probe(call_without, cross_entropy_tools, "softmax_cross_entropy", why, "used_builtin",
                 softmax_cross_entropy, logits, targets)

Each tool is replaced by a stand-in that records the call and stops the check
with a message naming the tool. Everything is put back when the block ends,
whether it ends normally or with an exception, so the learner's session (and
the check's own reference computations, made outside the block) see the real
functions. A learner's ``try``/``except`` that swallows the stop does not help:
the block fails afterwards all the same.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from autograder.results import CheckFailure

# (object that holds the attribute, attribute name, how the learner knows it)
Target = tuple[Any, str, str]

_MISSING = object()


def _message(exercise: str, label: str, why: str) -> str:
    return f"your `{exercise}` called {label}, which is switched off while it is checked: {why}"


@contextlib.contextmanager
def unavailable(exercise: str, targets: list[Target], why: str, code: str) -> Iterator[list[str]]:
    """Make every target raise while the block runs; fail the check if any was called."""
    calls: list[str] = []
    saved: list[tuple[Any, str, Any]] = []

    def stand_in(label: str):
        def blocked(*args, **kwargs):
            calls.append(label)
            raise CheckFailure(_message(exercise, label, why), code)

        blocked.__name__ = f"unavailable_{label}"
        return blocked

    try:
        for owner, name, label in targets:
            # The owner's own entry (not an inherited one) is what must come back afterwards.
            saved.append((owner, name, vars(owner).get(name, _MISSING)))
            setattr(owner, name, stand_in(label))
        try:
            yield calls
        except CheckFailure:
            raise
        except Exception:
            if calls:  # the learner's code turned our stop into another error
                raise CheckFailure(_message(exercise, calls[0], why), code) from None
            raise
        if calls:  # the learner's code caught the stop and carried on
            raise CheckFailure(_message(exercise, calls[0], why), code)
    finally:
        for owner, name, original in reversed(saved):
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def autograd_tools() -> list[Target]:
    import torch

    return [
        (torch.Tensor, "backward", "`.backward()`"),
        (torch.autograd, "backward", "`torch.autograd.backward`"),
        (torch.autograd, "grad", "`torch.autograd.grad`"),
        # What both of the above call in turn, which also catches `from torch.autograd import grad`.
        (torch.autograd, "_engine_run_backward", "autograd (`backward` or `torch.autograd.grad`)"),
    ]


def cross_entropy_tools() -> list[Target]:
    import torch
    import torch.nn.functional as F
    from torch import nn

    return [
        (F, "cross_entropy", "`F.cross_entropy`"),
        (torch._C._nn, "cross_entropy_loss", "`F.cross_entropy`"),
        (nn.CrossEntropyLoss, "__init__", "`nn.CrossEntropyLoss`"),
        (nn.CrossEntropyLoss, "forward", "`nn.CrossEntropyLoss`"),
        (torch, "log_softmax", "`torch.log_softmax`"),
        (torch.special, "log_softmax", "`torch.special.log_softmax`"),
        (F, "log_softmax", "`F.log_softmax`"),
        (torch.Tensor, "log_softmax", "`Tensor.log_softmax`"),
        (nn.LogSoftmax, "__init__", "`nn.LogSoftmax`"),
        (nn.LogSoftmax, "forward", "`nn.LogSoftmax`"),
    ]


def module_building_tools() -> list[Target]:
    from torch import nn

    return [(nn.Module, "__init__", "`nn.Linear(...)` (or another module's constructor)")]


def call_without(tools, exercise: str, why: str, code: str, function, *args, **kwargs):
    """A probe: ``function(*args, **kwargs)`` with every tool ``tools()`` lists switched off (see
    :func:`unavailable`); what it returned, or the failure that names the tool it called."""
    with unavailable(exercise, tools(), why=why, code=code):
        return function(*args, **kwargs)
