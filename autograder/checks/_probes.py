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


def calls_to(function, names: tuple[str, ...], args: tuple = (), kwargs: dict | None = None):
    """Call ``function(*args, **kwargs)`` while the functions named ``names`` in its module's globals (the
    learner's notebook, for a function defined there) count their calls; return its result and the count
    of each name (None for the counts where ``function`` has no globals to watch). The names are put back
    as they were afterwards, whatever happens. This is how a check sees which of the learner's own
    functions an answer is built from."""
    space = getattr(function, "__globals__", None)
    if not isinstance(space, dict):
        return function(*args, **(kwargs or {})), None
    counts = {name: 0 for name in names}

    def watched(name, original):
        def call(*a, **k):
            counts[name] += 1
            return original(*a, **k)

        return call

    saved = {name: space[name] for name in names if callable(space.get(name))}
    try:
        for name, original in saved.items():
            space[name] = watched(name, original)
        result = function(*args, **(kwargs or {}))
    finally:
        space.update(saved)
    return result, counts


import torch  # noqa: E402  (StepRecorder subclasses one of its optimizers)


class StepRecorder(torch.optim.SGD):
    """Plain SGD that notes, at every ``step()``, the parameters it was about to change and the gradients it
    was handed, in ``record`` (or in ``log``, a list shared with a model's own notes, so that forward passes
    and steps sit on one timeline). ``step(closure)`` works as documented: the closure runs first, with
    autograd on, and its loss is returned. The recorder never says what the gradients should have been:
    the judge computes that itself, from the parameters noted here."""

    def __init__(self, params, lr: float, momentum: float = 0.0, log: list | None = None):
        super().__init__(params, lr=lr, momentum=momentum)
        self.record = log if log is not None else []

    def __getstate__(self):
        # an Optimizer's state for copy and pickle leaves out what a subclass adds: keep the notes
        return {**super().__getstate__(), "record": self.record}

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for group in self.param_groups for p in group["params"]]
        self.record.append({"kind": "step", "params": [p.detach().clone() for p in params],
                            "grads": [None if p.grad is None else p.grad.detach().clone() for p in params]})
        super().step()
        return loss


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
