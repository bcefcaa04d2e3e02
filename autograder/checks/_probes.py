"""Probes that several notebooks' checks share: small functions that run in the learner's process, call
the learner's code there, and report what happened as plain data (see :mod:`autograder.learner`).

A probe reports and never judges: it returns observations (a result, the gradients that reached an
input, what a call left behind), and the check that ran it compares them, in its own process, with
what it computed itself. A probe never computes what an exercise's answer should be.
"""

from __future__ import annotations

from typing import Any


def backward_through(function, args: tuple, wrt: tuple[int, ...] = (0,), kwargs: dict | None = None):
    """Call ``function(*args, **kwargs)`` with the arguments at the positions ``wrt`` made fresh leaves that
    require grad, then run backward from its result (summed, when it is not a single number); return the
    result and the gradient that reached each of those arguments (None where none did). A result that is
    not a tensor in the graph is returned as it is, with no gradients."""
    import torch

    args = list(args)
    for i in wrt:
        args[i] = args[i].detach().clone().requires_grad_()
    result = function(*args, **(kwargs or {}))
    grads: list[Any] = [None] * len(wrt)
    if isinstance(result, torch.Tensor) and result.requires_grad:
        with torch.enable_grad():
            (result if result.dim() == 0 else result.sum()).backward()
        grads = [args[i].grad for i in wrt]
    return result, grads


def call_with_data_sealed(exercise: str, function, *args, **kwargs):
    """``function(*args, **kwargs)`` while the course's data sets cannot be loaded (a challenge trains on the
    samples it is handed; see ``_support.data_sealed``): what it returned, or the failure that says it tried."""
    from autograder.checks._support import data_sealed

    with data_sealed(function, exercise):
        return function(*args, **kwargs)


def outputs_of(model, inputs):
    """``model(inputs)`` without a graph, the inputs moved to the device of the model's first parameter or
    buffer (a learner's model may live on a GPU), the outputs back on the CPU. The model's mode is the
    caller's business."""
    import torch

    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    with torch.no_grad():
        out = model(inputs.to(device))
    return out.cpu() if isinstance(out, torch.Tensor) else out
